// test_ops_grad: every backward op of the CPU backend against central finite differences of the
// double-precision reference forward (kernels/cpu/ref/), on a random projection r of the output
// (L = sum r * y, so dy = r). Gradient buffers are prefilled with random values and the test
// checks got - prefill, which also proves the accumulate (+=) semantics of ops.h. Also: calling
// a backward twice doubles its gradient.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "kernels/cpu/ref/ref_ops.h"
#include "kernels/ops.h"
#include "tests/test_ops_ref.h"


// --- activations ----------------------------------------------------------------------------------

typedef struct {
    ops_act act;
    double *x;
    size_t n;
} act_cfg;
static void act_fwd_d(void *c, double *out) {
    act_cfg *a = c;
    ref_act_fwd(a->act, out, a->x, a->n);
}

START_TEST(test_act_bwd) {
    size_t n = 301;
    float *x = ref_rand(n, 1, -6, 6), *r = ref_rand(n, 2, -1, 1), *pre, *dx = tops_prefill(n, 3, &pre);
    act_cfg cfg = {(ops_act)_i, ref_dup(x, n), n};
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_act_bwd(ctx, cfg.act, dx, r, x, n), 0);
    tops_grad_check(act_fwd_d, &cfg, cfg.x, n, n, r, dx, pre, "act_bwd");
    ops_ctx_destroy(ctx);
    free(x), free(r), free(pre), free(dx), free(cfg.x);
}
END_TEST

// --- convolution ----------------------------------------------------------------------------------

typedef struct {
    const ops_conv_shape *s;
    double *x, *w, *b;
} conv_cfg;
static void conv_fwd_d(void *c, double *out) {
    conv_cfg *k = c;
    ref_conv2d_fwd(k->s, out, k->x, k->w, k->b);
}

static const ops_conv_shape grad_convs[] = {
    {1, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1},   {3, 5, 9, 7, 6, 3, 3, 2, 0, 0, 1, 1}, {3, 13, 5, 5, 7, 1, 1, 1, 0, 0, 0, 0},
    {2, 4, 8, 8, 3, 1, 1, 2, 0, 0, 0, 0},   {3, 6, 11, 10, 9, 5, 3, 2, 2, 1, 0, 2}, {40, 2, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1},
    {3, 17, 4, 4, 33, 3, 3, 1, 1, 1, 1, 1},  {2, 9, 5, 7, 10, 3, 3, 1, 1, 1, 1, 1},  {2, 8, 6, 5, 8, 3, 3, 1, 0, 2, 1, 0},
    {3, 8, 4, 5, 8, 3, 3, 1, 3, 0, 0, 3},   {12, 8, 2, 3, 8, 3, 3, 1, 1, 1, 1, 1},
};

START_TEST(test_conv2d_bwd) {
    const ops_conv_shape *s = &grad_convs[_i];
    size_t nx = (size_t)s->n * s->c_in * s->h * s->w, nw = (size_t)s->c_out * s->c_in * s->kh * s->kw;
    size_t ny = (size_t)s->n * s->c_out * ops_conv_out_h(s) * ops_conv_out_w(s);
    float *x = ref_rand(nx, 10 + _i, -1, 1), *w = ref_rand(nw, 20 + _i, -1, 1), *b = ref_rand(s->c_out, 30, -1, 1);
    float *r = ref_rand(ny, 40 + _i, -1, 1), *px, *pw, *pb;
    float *dx = tops_prefill(nx, 50, &px), *dw = tops_prefill(nw, 51, &pw), *db = tops_prefill(s->c_out, 52, &pb);
    conv_cfg cfg = {s, ref_dup(x, nx), ref_dup(w, nw), ref_dup(b, s->c_out)};
    ops_ctx *ctx = tops_ctx(2 + _i % 2); // 2 and 3 threads: outer and inner threading
    for (int path = TOPS_CONV_F2; path < TOPS_CONV_PATHS; path++) { // Winograd F(2x2), F(4x4), direct
        // again from the same prefill
        memcpy(dx, px, nx * sizeof *dx), memcpy(dw, pw, nw * sizeof *dw), memcpy(db, pb, s->c_out * sizeof *db);
        tops_conv_path(path);
        ck_assert_int_eq(ops_conv2d_bwd_data(ctx, s, dx, r, w), 0);
        ck_assert_int_eq(ops_conv2d_bwd_weight(ctx, s, dw, db, r, x), 0);
        tops_conv_path(TOPS_CONV_AUTO);
        char what[64];
        snprintf(what, sizeof what, "conv2d_bwd_data %s", tops_conv_path_names[path]);
        tops_grad_check(conv_fwd_d, &cfg, cfg.x, nx, ny, r, dx, px, what);
        tops_grad_check(conv_fwd_d, &cfg, cfg.w, nw, ny, r, dw, pw, "conv2d_bwd_weight dw");
        tops_grad_check(conv_fwd_d, &cfg, cfg.b, s->c_out, ny, r, db, pb, "conv2d_bwd_weight db");
    }
    ops_ctx_destroy(ctx);
    free(x), free(w), free(b), free(r), free(px), free(pw), free(pb), free(dx), free(dw), free(db);
    free(cfg.x), free(cfg.w), free(cfg.b);
}
END_TEST

// Two backward calls from zero give twice one call (accumulation, not assignment).
START_TEST(test_conv2d_bwd_twice) {
    const ops_conv_shape *s = &grad_convs[_i];
    size_t nx = (size_t)s->n * s->c_in * s->h * s->w, nw = (size_t)s->c_out * s->c_in * s->kh * s->kw;
    size_t ny = (size_t)s->n * s->c_out * ops_conv_out_h(s) * ops_conv_out_w(s);
    float *x = ref_rand(nx, 1, -1, 1), *w = ref_rand(nw, 2, -1, 1), *dy = ref_rand(ny, 3, -1, 1);
    float *dx1 = calloc(nx, sizeof(float)), *dw1 = calloc(nw, sizeof(float)), *db1 = calloc(s->c_out, sizeof(float));
    float *dx2 = calloc(nx, sizeof(float)), *dw2 = calloc(nw, sizeof(float)), *db2 = calloc(s->c_out, sizeof(float));
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_conv2d_bwd_data(ctx, s, dx1, dy, w), 0);
    ck_assert_int_eq(ops_conv2d_bwd_weight(ctx, s, dw1, db1, dy, x), 0);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(ops_conv2d_bwd_data(ctx, s, dx2, dy, w), 0);
        ck_assert_int_eq(ops_conv2d_bwd_weight(ctx, s, dw2, db2, dy, x), 0);
    }
    double *want = malloc((nx > nw ? nx : nw) * sizeof *want);
    for (size_t i = 0; i < nx; i++) want[i] = 2.0 * dx1[i];
    ck_assert_double_le(ref_rel_err(dx2, want, nx), 1e-6);
    for (size_t i = 0; i < nw; i++) want[i] = 2.0 * dw1[i];
    ck_assert_double_le(ref_rel_err(dw2, want, nw), 1e-6);
    for (int i = 0; i < s->c_out; i++) want[i] = 2.0 * db1[i];
    ck_assert_double_le(ref_rel_err(db2, want, s->c_out), 1e-6);
    ops_ctx_destroy(ctx);
    free(x), free(w), free(dy), free(dx1), free(dw1), free(db1), free(dx2), free(dw2), free(db2), free(want);
}
END_TEST

// --- linear -----------------------------------------------------------------------------------------

typedef struct {
    double *x, *w, *b;
    int n, in, out;
} lin_cfg;
static void lin_fwd_d(void *c, double *out) {
    lin_cfg *l = c;
    ref_linear_fwd(out, l->x, l->w, l->b, l->n, l->in, l->out);
}

START_TEST(test_linear_bwd) {
    int n = _i ? 3 : 1, in = 19, out = 11;
    size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
    float *x = ref_rand(nx, 60, -1, 1), *w = ref_rand(nw, 61, -1, 1), *b = ref_rand(out, 62, -1, 1);
    float *r = ref_rand(ny, 63, -1, 1), *px, *pw, *pb;
    float *dx = tops_prefill(nx, 64, &px), *dw = tops_prefill(nw, 65, &pw), *db = tops_prefill(out, 66, &pb);
    lin_cfg cfg = {ref_dup(x, nx), ref_dup(w, nw), ref_dup(b, out), n, in, out};
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_linear_bwd(ctx, dx, dw, db, r, x, w, n, in, out), 0);
    tops_grad_check(lin_fwd_d, &cfg, cfg.x, nx, ny, r, dx, px, "linear_bwd dx");
    tops_grad_check(lin_fwd_d, &cfg, cfg.w, nw, ny, r, dw, pw, "linear_bwd dw");
    tops_grad_check(lin_fwd_d, &cfg, cfg.b, out, ny, r, db, pb, "linear_bwd db");
    // dx and db may be NULL
    ck_assert_int_eq(ops_linear_bwd(ctx, NULL, dw, NULL, r, x, w, n, in, out), 0);
    ops_ctx_destroy(ctx);
    free(x), free(w), free(b), free(r), free(px), free(pw), free(pb), free(dx), free(dw), free(db);
    free(cfg.x), free(cfg.w), free(cfg.b);
}
END_TEST

// --- normalisation --------------------------------------------------------------------------------

typedef struct {
    ops_act act;
    double *x, *gamma, *beta;
    int n, c, hw, groups; // groups 0: BatchNorm (training)
} norm_cfg;
static void norm_fwd_d(void *p, double *out) {
    norm_cfg *k = p;
    if (k->groups)
        ref_groupnorm_fwd(k->act, out, NULL, NULL, k->x, k->gamma, k->beta, k->n, k->c, k->hw, k->groups, 1e-6);
    else
        ref_batchnorm_fwd_train(k->act, out, NULL, NULL, NULL, NULL, k->x, k->gamma, k->beta, k->n, k->c, k->hw, 0.1,
                                1e-5);
}

// Sync BatchNorm's backward on slices of 1, 0-2 and the rest of the images: partial sums,
// summed in slice order, dgamma/dbeta from the sums, dx slice by slice (what the ResNet's
// replicas do, common/nn/resnet.c).
static void bn_bwd_sliced(ops_ctx *ctx, ops_act act, float *dx, float *dg, float *db, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *ga, const float *be, int n, int c, int hw) {
    int i0[4] = {0, 1, 1 + (n - 1) / 2, n};
    float *part = malloc((size_t)2 * c * sizeof *part), *tot = calloc((size_t)2 * c, sizeof *tot);
    for (int k = 0; k < 3; k++)
        if (i0[k + 1] > i0[k]) {
            size_t o = (size_t)i0[k] * c * hw;
            ck_assert_int_eq(
                ops_batchnorm_bwd_sums(ctx, act, part, dy + o, x + o, mean, rstd, ga, be, i0[k + 1] - i0[k], c, hw), 0);
            ck_assert_int_eq(ops_add(ctx, tot, tot, part, (size_t)2 * c), 0);
        }
    ck_assert_int_eq(ops_add(ctx, db, db, tot, (size_t)c), 0);
    ck_assert_int_eq(ops_add(ctx, dg, dg, tot + c, (size_t)c), 0);
    for (int k = 0; k < 3; k++)
        if (i0[k + 1] > i0[k]) {
            size_t o = (size_t)i0[k] * c * hw;
            ck_assert_int_eq(ops_batchnorm_bwd_dx(ctx, act, dx + o, dy + o, x + o, mean, rstd, ga, be, tot, n * hw,
                                                  i0[k + 1] - i0[k], c, hw), 0);
        }
    free(part), free(tot);
}

// mode 0: one backward; 1: two (they must accumulate); 2: sync BatchNorm (bn_bwd_sliced)
static void norm_case(int group_norm, int i, int mode) {
    static const int gdims[][4] = {{2, 6, 5, 3}, {1, 4, 7, 4}, {3, 10, 9, 2}};
    static const int bdims[][3] = {{3, 5, 4}, {1, 3, 9}, {4, 2, 1}};
    ops_act act = (ops_act)(i % 3);
    int d = i / 3, n, c, hw, g = 0;
    if (group_norm) n = gdims[d][0], c = gdims[d][1], hw = gdims[d][2], g = gdims[d][3];
    else n = bdims[d][0], c = bdims[d][1], hw = bdims[d][2];
    size_t nx = (size_t)n * c * hw, ns = group_norm ? (size_t)n * g : (size_t)c;
    float *x = ref_rand(nx, 70 + i, -2, 2), *ga = ref_rand(c, 71, 0.5, 1.5), *be = ref_rand(c, 72, -0.5, 0.5);
    float *r = ref_rand(nx, 73 + i, -1, 1), *y = malloc(nx * sizeof *y), *mean = malloc(ns * sizeof *mean);
    float *rstd = malloc(ns * sizeof *rstd), *rm = calloc(c, sizeof *rm), *rv = calloc(c, sizeof *rv), *px, *pg, *pb;
    float *dx = tops_prefill(nx, 74, &px), *dg = tops_prefill(c, 75, &pg), *db = tops_prefill(c, 76, &pb);
    norm_cfg cfg = {act, ref_dup(x, nx), ref_dup(ga, c), ref_dup(be, c), n, c, hw, g};
    ops_ctx *ctx = tops_ctx(2);
    if (group_norm) {
        ck_assert_int_eq(ops_groupnorm_fwd(ctx, act, y, mean, rstd, x, ga, be, n, c, hw, g, 1e-6f), 0);
        for (int k = 0; k < 1 + mode; k++)
            ck_assert_int_eq(ops_groupnorm_bwd(ctx, act, dx, dg, db, r, x, mean, rstd, ga, be, n, c, hw, g), 0);
    } else {
        ck_assert_int_eq(ops_batchnorm_fwd_train(ctx, act, y, mean, rstd, rm, rv, x, ga, be, n, c, hw, 0.1f, 1e-5f), 0);
        for (int k = 0; k < 1 + (mode == 1); k++)
            if (mode == 2) bn_bwd_sliced(ctx, act, dx, dg, db, r, x, mean, rstd, ga, be, n, c, hw);
            else ck_assert_int_eq(ops_batchnorm_bwd(ctx, act, dx, dg, db, r, x, mean, rstd, ga, be, n, c, hw), 0);
    }
    if (mode == 1) { // halve the accumulated part: two calls must add the same gradient twice
        for (size_t j = 0; j < nx; j++) dx[j] = px[j] + (dx[j] - px[j]) * 0.5f;
        for (int j = 0; j < c; j++) dg[j] = pg[j] + (dg[j] - pg[j]) * 0.5f, db[j] = pb[j] + (db[j] - pb[j]) * 0.5f;
    }
    const char *nm = group_norm ? "groupnorm_bwd" : mode == 2 ? "sync batchnorm_bwd" : "batchnorm_bwd";
    char what[64];
    snprintf(what, sizeof what, "%s dx act %d%s", nm, (int)act, mode == 1 ? " (twice)" : "");
    tops_grad_check(norm_fwd_d, &cfg, cfg.x, nx, nx, r, dx, px, what);
    snprintf(what, sizeof what, "%s dgamma act %d", nm, (int)act);
    tops_grad_check(norm_fwd_d, &cfg, cfg.gamma, c, nx, r, dg, pg, what);
    snprintf(what, sizeof what, "%s dbeta act %d", nm, (int)act);
    tops_grad_check(norm_fwd_d, &cfg, cfg.beta, c, nx, r, db, pb, what);
    ops_ctx_destroy(ctx);
    free(x), free(ga), free(be), free(r), free(y), free(mean), free(rstd), free(rm), free(rv);
    free(px), free(pg), free(pb), free(dx), free(dg), free(db), free(cfg.x), free(cfg.gamma), free(cfg.beta);
}

START_TEST(test_groupnorm_bwd) { norm_case(1, _i, 0); }
END_TEST
START_TEST(test_batchnorm_bwd) { norm_case(0, _i, 0); }
END_TEST
START_TEST(test_norm_bwd_twice) { norm_case(_i & 1, 3 + (_i >> 1), 1); }
END_TEST
START_TEST(test_batchnorm_bwd_sync) { norm_case(0, _i, 2); }
END_TEST

Suite *suite_ops_grad(void) {
    Suite *s = suite_create("ops_grad");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_act_bwd, 0, OPS_ACT_COUNT);
    tcase_add_loop_test(tc, test_conv2d_bwd, 0, (int)(sizeof grad_convs / sizeof grad_convs[0]));
    tcase_add_loop_test(tc, test_conv2d_bwd_twice, 0, (int)(sizeof grad_convs / sizeof grad_convs[0]));
    tcase_add_loop_test(tc, test_linear_bwd, 0, 2);
    tcase_add_loop_test(tc, test_groupnorm_bwd, 0, 9);
    tcase_add_loop_test(tc, test_batchnorm_bwd, 0, 9);
    tcase_add_loop_test(tc, test_norm_bwd_twice, 0, 6);
    tcase_add_loop_test(tc, test_batchnorm_bwd_sync, 0, 9);
    suite_add_tcase(s, tc);
    return s;
}
