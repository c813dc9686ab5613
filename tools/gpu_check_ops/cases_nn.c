// cases_nn: gpu-check-ops cases for convolution (symmetric and asymmetric padding, stride 2,
// 1x1, the UNet's and ResNet-18's shapes), linear, batched GEMM with every transpose, GroupNorm
// and BatchNorm with each fused activation. Backward outputs start from random values so that
// accumulation (+=) is checked too.
#include <stdio.h>

#include "common/err.h"
#include "tools/gpu_check_ops/gc.h"

#define A(expr)                  \
    do {                         \
        rc = (expr);             \
        if (rc < 0) goto done;   \
    } while (0)
#define SEL(name) if (gc_selected(r, name))

// --- convolution ------------------------------------------------------------------------------

static int case_conv(gc_run *r, ops_conv_shape s, int bias) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "%dx%dx%dx%d->%d k%dx%d s%d p%d%d%d%d%s", s.n, s.c_in, s.h, s.w, s.c_out, s.kh, s.kw,
             s.stride, s.pad_t, s.pad_l, s.pad_b, s.pad_r, bias ? " b" : "");
    int ho = ops_conv_out_h(&s), wo = ops_conv_out_w(&s);
    size_t nx = (size_t)s.n * s.c_in * s.h * s.w, nw = (size_t)s.c_out * s.c_in * s.kh * s.kw;
    size_t ny = (size_t)s.n * s.c_out * ho * wo;
    gc_t x = {0}, w = {0}, b = {0}, y = {0}, dy = {0}, dx = {0}, dw = {0}, db = {0};
    A(gc_rand(r, &x, nx, -1.f, 1.f));
    A(gc_rand(r, &w, nw, -0.5f, 0.5f));
    A(gc_rand(r, &b, (size_t)s.c_out, -1.f, 1.f));
    A(gc_rand(r, &y, ny, -1.f, 1.f));
    A(gc_rand(r, &dy, ny, -1.f, 1.f));
    A(gc_rand(r, &dx, nx, -1.f, 1.f));
    A(gc_rand(r, &dw, nw, -1.f, 1.f));
    A(gc_rand(r, &db, (size_t)s.c_out, -1.f, 1.f));
    SEL("conv2d_fwd") {
        GC_BOTH(r, "conv2d_fwd", what, ops_conv2d_fwd(CTX, &s, P(y), P(x), P(w), bias ? P(b) : NULL));
        A(gc_compare(r, "conv2d_fwd", what, "y", &y));
    }
    SEL("conv2d_bwd_data") {
        GC_BOTH(r, "conv2d_bwd_data", what, ops_conv2d_bwd_data(CTX, &s, P(dx), P(dy), P(w)));
        A(gc_compare(r, "conv2d_bwd_data", what, "dx", &dx));
    }
    SEL("conv2d_bwd_weight") {
        GC_BOTH(r, "conv2d_bwd_weight", what, ops_conv2d_bwd_weight(CTX, &s, P(dw), bias ? P(db) : NULL, P(dy), P(x)));
        A(gc_compare(r, "conv2d_bwd_weight", what, "dw", &dw));
        if (bias) A(gc_compare(r, "conv2d_bwd_weight", what, "db", &db));
    }
done:
    gc_free(r, &x);
    gc_free(r, &w);
    gc_free(r, &b);
    gc_free(r, &y);
    gc_free(r, &dy);
    gc_free(r, &dx);
    gc_free(r, &dw);
    gc_free(r, &db);
    return rc;
}

static ops_conv_shape gc_shape(int n, int c, int h, int w, int co, int k, int stride, int pt, int pl, int pb, int pr) {
    ops_conv_shape s = {n, c, h, w, co, k, k, stride, pt, pl, pb, pr};
    return s;
}

// --- linear and bmm ---------------------------------------------------------------------------

static int case_linear(gc_run *r, int n, int in, int out, int bias) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n%d in%d out%d%s", n, in, out, bias ? " b" : "");
    gc_t x = {0}, w = {0}, b = {0}, y = {0}, dy = {0}, dx = {0}, dw = {0}, db = {0};
    A(gc_rand(r, &x, (size_t)n * in, -1.f, 1.f));
    A(gc_rand(r, &w, (size_t)out * in, -0.5f, 0.5f));
    A(gc_rand(r, &b, (size_t)out, -1.f, 1.f));
    A(gc_rand(r, &y, (size_t)n * out, -1.f, 1.f));
    A(gc_rand(r, &dy, (size_t)n * out, -1.f, 1.f));
    A(gc_rand(r, &dx, (size_t)n * in, -1.f, 1.f));
    A(gc_rand(r, &dw, (size_t)out * in, -1.f, 1.f));
    A(gc_rand(r, &db, (size_t)out, -1.f, 1.f));
    SEL("linear_fwd") {
        GC_BOTH(r, "linear_fwd", what, ops_linear_fwd(CTX, P(y), P(x), P(w), bias ? P(b) : NULL, n, in, out));
        A(gc_compare(r, "linear_fwd", what, "y", &y));
    }
    SEL("linear_bwd") {
        GC_BOTH(r, "linear_bwd", what,
                ops_linear_bwd(CTX, P(dx), P(dw), bias ? P(db) : NULL, P(dy), P(x), P(w), n, in, out));
        A(gc_compare(r, "linear_bwd", what, "dx", &dx));
        A(gc_compare(r, "linear_bwd", what, "dw", &dw));
        if (bias) A(gc_compare(r, "linear_bwd", what, "db", &db));
    }
done:
    gc_free(r, &x);
    gc_free(r, &w);
    gc_free(r, &b);
    gc_free(r, &y);
    gc_free(r, &dy);
    gc_free(r, &dx);
    gc_free(r, &dw);
    gc_free(r, &db);
    return rc;
}

static int case_bmm(gc_run *r, int batch, int m, int n, int k, float alpha, float beta) {
    int rc = 0;
    gc_t a = {0}, b = {0}, c = {0};
    A(gc_rand(r, &a, (size_t)batch * m * k, -1.f, 1.f));
    A(gc_rand(r, &b, (size_t)batch * k * n, -1.f, 1.f));
    A(gc_rand(r, &c, (size_t)batch * m * n, -1.f, 1.f));
    for (int t = 0; t < 4 && gc_selected(r, "bmm"); t++) {
        int ta = t & 1, tb = t >> 1;
        char what[96];
        snprintf(what, sizeof what, "b%d m%d n%d k%d ta%d tb%d a%g b%g", batch, m, n, k, ta, tb, (double)alpha,
                 (double)beta);
        GC_BOTH(r, "bmm", what, ops_bmm(CTX, P(c), P(a), P(b), batch, m, n, k, ta, tb, alpha, beta));
        A(gc_compare(r, "bmm", what, "c", &c));
    }
done:
    gc_free(r, &a);
    gc_free(r, &b);
    gc_free(r, &c);
    return rc;
}

// --- normalisation ----------------------------------------------------------------------------

static const char *const gc_acts[OPS_ACT_COUNT] = {"none", "relu", "swish"};

static int case_groupnorm(gc_run *r, int n, int c, int hw, int groups, ops_act act) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n%d c%d hw%d g%d %s", n, c, hw, groups, gc_acts[act]);
    size_t nx = (size_t)n * c * hw;
    gc_t x = {0}, y = {0}, mean = {0}, rstd = {0}, gamma = {0}, beta = {0}, dy = {0}, dx = {0}, dg = {0}, dbt = {0};
    A(gc_rand(r, &x, nx, -2.f, 3.f));
    A(gc_rand(r, &y, nx, -1.f, 1.f));
    A(gc_fill(r, &mean, (size_t)n * groups, 0.f));
    A(gc_fill(r, &rstd, (size_t)n * groups, 0.f));
    A(gc_rand(r, &gamma, (size_t)c, 0.5f, 1.5f));
    A(gc_rand(r, &beta, (size_t)c, -0.5f, 0.5f));
    A(gc_rand(r, &dy, nx, -1.f, 1.f));
    A(gc_rand(r, &dx, nx, -1.f, 1.f));
    A(gc_rand(r, &dg, (size_t)c, -1.f, 1.f));
    A(gc_rand(r, &dbt, (size_t)c, -1.f, 1.f));
    if (gc_selected(r, "groupnorm_fwd") || gc_selected(r, "groupnorm_bwd")) {
        GC_BOTH(r, "groupnorm_fwd", what,
                ops_groupnorm_fwd(CTX, act, P(y), P(mean), P(rstd), P(x), P(gamma), P(beta), n, c, hw, groups, 1e-6f));
        A(gc_compare(r, "groupnorm_fwd", what, "y", &y));
        A(gc_compare(r, "groupnorm_fwd", what, "mean", &mean));
        A(gc_compare(r, "groupnorm_fwd", what, "rstd", &rstd));
        // backward from the reference's saved statistics on both sides
        GC_BOTH(r, "groupnorm_bwd", what,
                ops_groupnorm_bwd(CTX, act, P(dx), P(dg), P(dbt), P(dy), P(x), P(mean), P(rstd), P(gamma), P(beta), n,
                                  c, hw, groups));
        A(gc_compare(r, "groupnorm_bwd", what, "dx", &dx));
        A(gc_compare(r, "groupnorm_bwd", what, "dgamma", &dg));
        A(gc_compare(r, "groupnorm_bwd", what, "dbeta", &dbt));
    }
done:
    gc_free(r, &x);
    gc_free(r, &y);
    gc_free(r, &mean);
    gc_free(r, &rstd);
    gc_free(r, &gamma);
    gc_free(r, &beta);
    gc_free(r, &dy);
    gc_free(r, &dx);
    gc_free(r, &dg);
    gc_free(r, &dbt);
    return rc;
}

static int case_batchnorm(gc_run *r, int n, int c, int hw, ops_act act) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n%d c%d hw%d %s", n, c, hw, gc_acts[act]);
    size_t nx = (size_t)n * c * hw;
    gc_t x = {0}, y = {0}, mean = {0}, rstd = {0}, rm = {0}, rv = {0}, gamma = {0}, beta = {0}, dy = {0}, dx = {0},
         dg = {0}, dbt = {0};
    A(gc_rand(r, &x, nx, -2.f, 3.f));
    A(gc_rand(r, &y, nx, -1.f, 1.f));
    A(gc_fill(r, &mean, (size_t)c, 0.f));
    A(gc_fill(r, &rstd, (size_t)c, 0.f));
    A(gc_rand(r, &rm, (size_t)c, -0.1f, 0.1f));
    A(gc_rand(r, &rv, (size_t)c, 0.9f, 1.1f));
    A(gc_rand(r, &gamma, (size_t)c, 0.5f, 1.5f));
    A(gc_rand(r, &beta, (size_t)c, -0.5f, 0.5f));
    A(gc_rand(r, &dy, nx, -1.f, 1.f));
    A(gc_rand(r, &dx, nx, -1.f, 1.f));
    A(gc_rand(r, &dg, (size_t)c, -1.f, 1.f));
    A(gc_rand(r, &dbt, (size_t)c, -1.f, 1.f));
    if (gc_selected(r, "batchnorm")) {
        GC_BOTH(r, "batchnorm_fwd_train", what,
                ops_batchnorm_fwd_train(CTX, act, P(y), P(mean), P(rstd), P(rm), P(rv), P(x), P(gamma), P(beta), n, c,
                                        hw, 0.1f, 1e-5f));
        A(gc_compare(r, "batchnorm_fwd_train", what, "y", &y));
        A(gc_compare(r, "batchnorm_fwd_train", what, "mean", &mean));
        A(gc_compare(r, "batchnorm_fwd_train", what, "rstd", &rstd));
        A(gc_compare(r, "batchnorm_fwd_train", what, "run_mean", &rm));
        A(gc_compare(r, "batchnorm_fwd_train", what, "run_var", &rv));
        GC_BOTH(r, "batchnorm_bwd", what,
                ops_batchnorm_bwd(CTX, act, P(dx), P(dg), P(dbt), P(dy), P(x), P(mean), P(rstd), P(gamma), P(beta), n, c,
                                  hw));
        A(gc_compare(r, "batchnorm_bwd", what, "dx", &dx));
        A(gc_compare(r, "batchnorm_bwd", what, "dgamma", &dg));
        A(gc_compare(r, "batchnorm_bwd", what, "dbeta", &dbt));
        GC_BOTH(r, "batchnorm_fwd_eval", what,
                ops_batchnorm_fwd_eval(CTX, act, P(y), P(x), P(gamma), P(beta), P(rm), P(rv), n, c, hw, 1e-5f));
        A(gc_compare(r, "batchnorm_fwd_eval", what, "y", &y));
    }
done:
    gc_free(r, &x);
    gc_free(r, &y);
    gc_free(r, &mean);
    gc_free(r, &rstd);
    gc_free(r, &rm);
    gc_free(r, &rv);
    gc_free(r, &gamma);
    gc_free(r, &beta);
    gc_free(r, &dy);
    gc_free(r, &dx);
    gc_free(r, &dg);
    gc_free(r, &dbt);
    return rc;
}

// --- families ---------------------------------------------------------------------------------

int gc_cases_matmul(gc_run *r) {
    int big = !r->quick;
    ERR_TRY(case_conv(r, gc_shape(3, 5, 7, 9, 6, 3, 1, 1, 1, 1, 1), 1));      // odd sizes, pad 1
    ERR_TRY(case_conv(r, gc_shape(2, 16, 32, 32, 32, 3, 2, 0, 0, 1, 1), 1));  // UNet Downsample
    ERR_TRY(case_conv(r, gc_shape(2, 13, 9, 11, 7, 3, 2, 1, 0, 0, 1), 0));    // odd, asymmetric
    ERR_TRY(case_conv(r, gc_shape(4, 13, 11, 11, 7, 1, 1, 0, 0, 0, 0), 1));   // 1x1
    if (big) ERR_TRY(case_conv(r, gc_shape(2, 64, 16, 16, 128, 1, 2, 0, 0, 0, 0), 0)); // ResNet shortcut
    if (big) ERR_TRY(case_conv(r, gc_shape(3, 3, 32, 32, 64, 3, 1, 1, 1, 1, 1), 0));   // ResNet stem
    if (big) ERR_TRY(case_conv(r, gc_shape(2, 128, 16, 16, 128, 3, 1, 1, 1, 1, 1), 1)); // UNet body
    ERR_TRY(case_conv(r, gc_shape(1, 1, 5, 5, 1, 5, 1, 2, 2, 2, 2), 1));      // single channel, big kernel
    ERR_TRY(case_linear(r, 5, 7, 3, 1));
    if (big) ERR_TRY(case_linear(r, 128, 512, 512, 1));
    ERR_TRY(case_linear(r, 3, 128, 10, 0));
    ERR_TRY(case_bmm(r, 1, 17, 33, 9, 1.f, 0.f));
    ERR_TRY(case_bmm(r, 3, 17, 33, 9, 0.7f, 0.3f));
    if (big) ERR_TRY(case_bmm(r, 8, 256, 256, 64, 0.125f, 0.f)); // attention at 16x16
    return 0;
}

int gc_cases_nn(gc_run *r) {
    ERR_TRY(gc_cases_matmul(r));
    for (int act = 0; act < OPS_ACT_COUNT; act++) {
        ERR_TRY(case_groupnorm(r, 2, 64, 33, 32, (ops_act)act));
        ERR_TRY(case_groupnorm(r, 3, 12, 7, 4, (ops_act)act));
        ERR_TRY(case_batchnorm(r, 3, 5, 49, (ops_act)act));
    }
    // more than 16384 values per channel: the sliced per-channel reductions of the CUDA backend
    ERR_TRY(case_batchnorm(r, 5, 2, 4000, OPS_ACT_RELU));
    ERR_TRY(case_groupnorm(r, 3, 8, 6000, 4, OPS_ACT_SWISH));
    if (!r->quick) {
        ERR_TRY(case_groupnorm(r, 4, 256, 256, 32, OPS_ACT_SWISH));
        ERR_TRY(case_batchnorm(r, 16, 64, 1024, OPS_ACT_RELU));
    }
    ERR_TRY(case_batchnorm(r, 2, 3, 1, OPS_ACT_NONE)); // two elements per channel
    return 0;
}
