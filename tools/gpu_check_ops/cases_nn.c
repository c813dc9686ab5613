// cases_nn: gpu-check-ops cases for convolution (symmetric and asymmetric padding, stride 2,
// 1x1, the UNet's and ResNet-18's shapes), linear, batched GEMM with every transpose, GroupNorm
// and BatchNorm with each fused activation. Backward outputs start from random values so that
// accumulation (+=) is checked too.
#include <stdio.h>

#include "common/err.h"
#include "tools/gpu_check_ops/gc.h"

// --- layers with weights: convolution, linear --------------------------------------------------

// Input, weight, bias, output and their gradients of a layer y = f(x; w, b), drawn in this order
// from the run's generator: x in [-1, 1), w in [-0.5, 0.5), the rest in [-1, 1).
typedef struct {
    gc_t x, w, b, y, dy, dx, dw, db;
} gc_layer;

static int layer_alloc(gc_run *r, gc_layer *l, size_t nx, size_t nw, size_t nb, size_t ny) {
    ERR_TRY(gc_rand(r, &l->x, nx, -1.f, 1.f));
    ERR_TRY(gc_rand(r, &l->w, nw, -0.5f, 0.5f));
    ERR_TRY(gc_rand(r, &l->b, nb, -1.f, 1.f));
    ERR_TRY(gc_rand(r, &l->y, ny, -1.f, 1.f));
    ERR_TRY(gc_rand(r, &l->dy, ny, -1.f, 1.f));
    ERR_TRY(gc_rand(r, &l->dx, nx, -1.f, 1.f));
    ERR_TRY(gc_rand(r, &l->dw, nw, -1.f, 1.f));
    return gc_rand(r, &l->db, nb, -1.f, 1.f);
}

static void layer_free(gc_run *r, gc_layer *l) {
    GC_FREE(r, &l->x, &l->w, &l->b, &l->y, &l->dy, &l->dx, &l->dw, &l->db);
}

static int case_conv(gc_run *r, ops_conv_shape s, int bias) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "%dx%dx%dx%d->%d k%dx%d s%d p%d%d%d%d%s", s.n, s.c_in, s.h, s.w, s.c_out, s.kh, s.kw,
             s.stride, s.pad_t, s.pad_l, s.pad_b, s.pad_r, bias ? " b" : "");
    int ho = ops_conv_out_h(&s), wo = ops_conv_out_w(&s);
    size_t nx = (size_t)s.n * s.c_in * s.h * s.w, nw = (size_t)s.c_out * s.c_in * s.kh * s.kw;
    size_t ny = (size_t)s.n * s.c_out * ho * wo;
    gc_layer l = {0};
    GC_TRY(layer_alloc(r, &l, nx, nw, (size_t)s.c_out, ny));
    GC_CHECK(r, "conv2d_fwd", what, "y", l.y, ops_conv2d_fwd(CTX, &s, P(l.y), P(l.x), P(l.w), bias ? P(l.b) : NULL));
    GC_CHECK(r, "conv2d_bwd_data", what, "dx", l.dx, ops_conv2d_bwd_data(CTX, &s, P(l.dx), P(l.dy), P(l.w)));
    GC_SEL("conv2d_bwd_weight") {
        GC_BOTH(r, "conv2d_bwd_weight", what,
                ops_conv2d_bwd_weight(CTX, &s, P(l.dw), bias ? P(l.db) : NULL, P(l.dy), P(l.x)));
        GC_TRY(gc_compare(r, "conv2d_bwd_weight", what, "dw", &l.dw));
        if (bias) GC_TRY(gc_compare(r, "conv2d_bwd_weight", what, "db", &l.db));
    }
done:
    layer_free(r, &l);
    return rc;
}

static ops_conv_shape gc_shape(int n, int c, int h, int w, int co, int k, int stride, int pt, int pl, int pb, int pr) {
    ops_conv_shape s = {n, c, h, w, co, k, k, stride, pt, pl, pb, pr};
    return s;
}

static int case_linear(gc_run *r, int n, int in, int out, int bias) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n%d in%d out%d%s", n, in, out, bias ? " b" : "");
    gc_layer l = {0};
    GC_TRY(layer_alloc(r, &l, (size_t)n * in, (size_t)out * in, (size_t)out, (size_t)n * out));
    GC_CHECK(r, "linear_fwd", what, "y", l.y,
             ops_linear_fwd(CTX, P(l.y), P(l.x), P(l.w), bias ? P(l.b) : NULL, n, in, out));
    GC_SEL("linear_bwd") {
        GC_BOTH(r, "linear_bwd", what,
                ops_linear_bwd(CTX, P(l.dx), P(l.dw), bias ? P(l.db) : NULL, P(l.dy), P(l.x), P(l.w), n, in, out));
        GC_TRY(gc_compare(r, "linear_bwd", what, "dx", &l.dx));
        GC_TRY(gc_compare(r, "linear_bwd", what, "dw", &l.dw));
        if (bias) GC_TRY(gc_compare(r, "linear_bwd", what, "db", &l.db));
    }
done:
    layer_free(r, &l);
    return rc;
}

// --- batched matrix product -------------------------------------------------------------------

static int case_bmm(gc_run *r, int batch, int m, int n, int k, float alpha, float beta) {
    int rc = 0;
    gc_t a = {0}, b = {0}, c = {0};
    GC_TRY(gc_rand(r, &a, (size_t)batch * m * k, -1.f, 1.f));
    GC_TRY(gc_rand(r, &b, (size_t)batch * k * n, -1.f, 1.f));
    GC_TRY(gc_rand(r, &c, (size_t)batch * m * n, -1.f, 1.f));
    for (int t = 0; t < 4 && gc_selected(r, "bmm"); t++) {
        int ta = t & 1, tb = t >> 1;
        char what[96];
        snprintf(what, sizeof what, "b%d m%d n%d k%d ta%d tb%d a%g b%g", batch, m, n, k, ta, tb, (double)alpha,
                 (double)beta);
        GC_BOTH(r, "bmm", what, ops_bmm(CTX, P(c), P(a), P(b), batch, m, n, k, ta, tb, alpha, beta));
        GC_TRY(gc_compare(r, "bmm", what, "c", &c));
    }
done:
    GC_FREE(r, &a, &b, &c);
    return rc;
}

// --- normalisation ----------------------------------------------------------------------------

// Tensors of a normalisation (GroupNorm, BatchNorm) and its gradients, drawn in this order: x in
// [-2, 3), y random, mean/rstd (nstat values) zero, with `running` the running mean and variance
// (c values near 0 and 1), gamma near 1, beta near 0, the gradients in [-1, 1).
typedef struct {
    gc_t x, y, mean, rstd, rm, rv, gamma, beta, dy, dx, dg, dbt;
} gc_norm;

static int norm_alloc(gc_run *r, gc_norm *v, size_t nx, size_t c, size_t nstat, int running) {
    ERR_TRY(gc_rand(r, &v->x, nx, -2.f, 3.f));
    ERR_TRY(gc_rand(r, &v->y, nx, -1.f, 1.f));
    ERR_TRY(gc_fill(r, &v->mean, nstat, 0.f));
    ERR_TRY(gc_fill(r, &v->rstd, nstat, 0.f));
    if (running) {
        ERR_TRY(gc_rand(r, &v->rm, c, -0.1f, 0.1f));
        ERR_TRY(gc_rand(r, &v->rv, c, 0.9f, 1.1f));
    }
    ERR_TRY(gc_rand(r, &v->gamma, c, 0.5f, 1.5f));
    ERR_TRY(gc_rand(r, &v->beta, c, -0.5f, 0.5f));
    ERR_TRY(gc_rand(r, &v->dy, nx, -1.f, 1.f));
    ERR_TRY(gc_rand(r, &v->dx, nx, -1.f, 1.f));
    ERR_TRY(gc_rand(r, &v->dg, c, -1.f, 1.f));
    return gc_rand(r, &v->dbt, c, -1.f, 1.f);
}

static void norm_free(gc_run *r, gc_norm *v) {
    GC_FREE(r, &v->x, &v->y, &v->mean, &v->rstd, &v->rm, &v->rv, &v->gamma, &v->beta, &v->dy, &v->dx, &v->dg, &v->dbt);
}

static int case_groupnorm(gc_run *r, int n, int c, int hw, int groups, ops_act act) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n%d c%d hw%d g%d %s", n, c, hw, groups, gc_act_names[act]);
    size_t nx = (size_t)n * c * hw;
    gc_norm v = {0};
    GC_TRY(norm_alloc(r, &v, nx, (size_t)c, (size_t)n * groups, 0));
    if (gc_selected(r, "groupnorm_fwd") || gc_selected(r, "groupnorm_bwd")) {
        GC_BOTH(r, "groupnorm_fwd", what,
                ops_groupnorm_fwd(CTX, act, P(v.y), P(v.mean), P(v.rstd), P(v.x), P(v.gamma), P(v.beta), n, c, hw,
                                  groups, 1e-6f));
        GC_TRY(gc_compare(r, "groupnorm_fwd", what, "y", &v.y));
        GC_TRY(gc_compare(r, "groupnorm_fwd", what, "mean", &v.mean));
        GC_TRY(gc_compare(r, "groupnorm_fwd", what, "rstd", &v.rstd));
        // backward from the reference's saved statistics on both sides
        GC_BOTH(r, "groupnorm_bwd", what,
                ops_groupnorm_bwd(CTX, act, P(v.dx), P(v.dg), P(v.dbt), P(v.dy), P(v.x), P(v.mean), P(v.rstd),
                                  P(v.gamma), P(v.beta), n, c, hw, groups));
        GC_TRY(gc_compare(r, "groupnorm_bwd", what, "dx", &v.dx));
        GC_TRY(gc_compare(r, "groupnorm_bwd", what, "dgamma", &v.dg));
        GC_TRY(gc_compare(r, "groupnorm_bwd", what, "dbeta", &v.dbt));
    }
done:
    norm_free(r, &v);
    return rc;
}

static int case_batchnorm(gc_run *r, int n, int c, int hw, ops_act act) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n%d c%d hw%d %s", n, c, hw, gc_act_names[act]);
    size_t nx = (size_t)n * c * hw;
    gc_norm v = {0};
    GC_TRY(norm_alloc(r, &v, nx, (size_t)c, (size_t)c, 1));
    if (gc_selected(r, "batchnorm")) {
        GC_BOTH(r, "batchnorm_fwd_train", what,
                ops_batchnorm_fwd_train(CTX, act, P(v.y), P(v.mean), P(v.rstd), P(v.rm), P(v.rv), P(v.x), P(v.gamma),
                                        P(v.beta), n, c, hw, 0.1f, 1e-5f));
        GC_TRY(gc_compare(r, "batchnorm_fwd_train", what, "y", &v.y));
        GC_TRY(gc_compare(r, "batchnorm_fwd_train", what, "mean", &v.mean));
        GC_TRY(gc_compare(r, "batchnorm_fwd_train", what, "rstd", &v.rstd));
        GC_TRY(gc_compare(r, "batchnorm_fwd_train", what, "run_mean", &v.rm));
        GC_TRY(gc_compare(r, "batchnorm_fwd_train", what, "run_var", &v.rv));
        GC_BOTH(r, "batchnorm_bwd", what,
                ops_batchnorm_bwd(CTX, act, P(v.dx), P(v.dg), P(v.dbt), P(v.dy), P(v.x), P(v.mean), P(v.rstd),
                                  P(v.gamma), P(v.beta), n, c, hw));
        GC_TRY(gc_compare(r, "batchnorm_bwd", what, "dx", &v.dx));
        GC_TRY(gc_compare(r, "batchnorm_bwd", what, "dgamma", &v.dg));
        GC_TRY(gc_compare(r, "batchnorm_bwd", what, "dbeta", &v.dbt));
        GC_BOTH(
            r, "batchnorm_fwd_eval", what,
            ops_batchnorm_fwd_eval(CTX, act, P(v.y), P(v.x), P(v.gamma), P(v.beta), P(v.rm), P(v.rv), n, c, hw, 1e-5f));
        GC_TRY(gc_compare(r, "batchnorm_fwd_eval", what, "y", &v.y));
    }
done:
    norm_free(r, &v);
    return rc;
}

// Sync BatchNorm (the ResNet's replicas, kernels/ops.h): statistics of the images in two slices
// (1 and n-1 images), merged; the backward's sums of each slice added up, then dx of each slice.
static int case_batchnorm_sync(gc_run *r, int n, int c, int hw, ops_act act) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n%d c%d hw%d %s, slices 1 + %d", n, c, hw, gc_act_names[act], n - 1);
    size_t nx = (size_t)n * c * hw, o1 = (size_t)c * hw;
    int counts[2] = {hw, (n - 1) * hw};
    gc_norm v = {0};
    gc_t parts = {0}, var = {0}, sums = {0}, tot = {0};
    GC_TRY(norm_alloc(r, &v, nx, (size_t)c, (size_t)c, 1));
    GC_TRY(gc_fill(r, &parts, (size_t)4 * c, 0.f));
    GC_TRY(gc_fill(r, &var, (size_t)c, 0.f));
    GC_TRY(gc_fill(r, &sums, (size_t)4 * c, 0.f));
    GC_TRY(gc_fill(r, &tot, (size_t)2 * c, 0.f));
    if (gc_selected(r, "batchnorm_stats_merge") || gc_selected(r, "batchnorm_bwd_sums") ||
        gc_selected(r, "batchnorm_bwd_dx")) {
        GC_BOTH(r, "batchnorm_stats", what, ops_batchnorm_stats(CTX, P(parts), P(v.x), 1, c, hw));
        GC_BOTH(r, "batchnorm_stats", what, ops_batchnorm_stats(CTX, P(parts) + 2 * c, P(v.x) + o1, n - 1, c, hw));
        GC_TRY(gc_compare(r, "batchnorm_stats", what, "parts", &parts));
        GC_BOTH(r, "batchnorm_stats_merge", what,
                ops_batchnorm_stats_merge(CTX, P(v.mean), P(var), P(v.rstd), P(v.rm), P(v.rv), P(parts), counts, 2, c,
                                          0.1f, 1e-5f));
        GC_TRY(gc_compare(r, "batchnorm_stats_merge", what, "mean", &v.mean));
        GC_TRY(gc_compare(r, "batchnorm_stats_merge", what, "var", &var));
        GC_TRY(gc_compare(r, "batchnorm_stats_merge", what, "rstd", &v.rstd));
        GC_TRY(gc_compare(r, "batchnorm_stats_merge", what, "run_mean", &v.rm));
        GC_TRY(gc_compare(r, "batchnorm_stats_merge", what, "run_var", &v.rv));
        GC_BOTH(r, "batchnorm_bwd_sums", what,
                ops_batchnorm_bwd_sums(CTX, act, P(sums), P(v.dy), P(v.x), P(v.mean), P(v.rstd), P(v.gamma), P(v.beta), 1,
                                       c, hw));
        GC_BOTH(r, "batchnorm_bwd_sums", what,
                ops_batchnorm_bwd_sums(CTX, act, P(sums) + 2 * c, P(v.dy) + o1, P(v.x) + o1, P(v.mean), P(v.rstd),
                                       P(v.gamma), P(v.beta), n - 1, c, hw));
        GC_TRY(gc_compare(r, "batchnorm_bwd_sums", what, "sums", &sums));
        GC_BOTH(r, "batchnorm_bwd_dx", what, ops_add(CTX, P(tot), P(sums), P(sums) + 2 * c, (size_t)2 * c));
        GC_BOTH(r, "batchnorm_bwd_dx", what,
                ops_batchnorm_bwd_dx(CTX, act, P(v.dx), P(v.dy), P(v.x), P(v.mean), P(v.rstd), P(v.gamma), P(v.beta),
                                     P(tot), n * hw, 1, c, hw));
        GC_BOTH(r, "batchnorm_bwd_dx", what,
                ops_batchnorm_bwd_dx(CTX, act, P(v.dx) + o1, P(v.dy) + o1, P(v.x) + o1, P(v.mean), P(v.rstd),
                                     P(v.gamma), P(v.beta), P(tot), n * hw, n - 1, c, hw));
        GC_TRY(gc_compare(r, "batchnorm_bwd_dx", what, "dx", &v.dx));
    }
done:
    GC_FREE(r, &parts, &var, &sums, &tot);
    norm_free(r, &v);
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
        ERR_TRY(case_batchnorm_sync(r, 3, 5, 49, (ops_act)act));
    }
    // more than 16384 values per channel: the sliced per-channel reductions of the CUDA backend
    ERR_TRY(case_batchnorm(r, 5, 2, 4000, OPS_ACT_RELU));
    ERR_TRY(case_batchnorm_sync(r, 5, 2, 4000, OPS_ACT_RELU));
    ERR_TRY(case_groupnorm(r, 3, 8, 6000, 4, OPS_ACT_SWISH));
    if (!r->quick) {
        ERR_TRY(case_groupnorm(r, 4, 256, 256, 32, OPS_ACT_SWISH));
        ERR_TRY(case_batchnorm(r, 16, 64, 1024, OPS_ACT_RELU));
    }
    ERR_TRY(case_batchnorm(r, 2, 3, 1, OPS_ACT_NONE)); // two elements per channel
    return 0;
}
