// test_ops_misc: the CPU backend's memory ops, Philox randomness (exact numbers, independence of
// how a stream is split into calls, moments), optimisers against double references over several
// steps, sum of squares, determinism (same result twice; reductions independent of threads),
// and the error contract (ERR_USAGE naming the op and shape, ERR_INPUT for bad ids/labels).
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "kernels/cpu/ref/ref_ops.h"
#include "kernels/ops.h"
#include "tests/test_ops_ref.h"
#include "tests/test_util.h"

START_TEST(test_memory) {
    ops_ctx *ctx = tops_ctx(0);
    ck_assert_int_eq(ops_ctx_device(ctx), OPS_DEV_CPU);
    float *a = NULL, *b = NULL, host[37], back[37];
    ck_assert_int_eq(ops_alloc(ctx, (void **)&a, sizeof host), 0);
    ck_assert_int_eq(ops_alloc(ctx, (void **)&b, sizeof host), 0);
    ck_assert_int_eq((uintptr_t)a % 64, 0);
    ref_fill_uniform(host, 37, 1, -1, 1);
    ck_assert_int_eq(ops_upload(ctx, a, host, sizeof host), 0);
    ck_assert_int_eq(ops_copy(ctx, b, a, sizeof host), 0);
    ck_assert_int_eq(ops_sync(ctx), 0);
    ck_assert_int_eq(ops_download(ctx, back, b, sizeof host), 0);
    ck_assert_mem_eq(back, host, sizeof host);
    ck_assert_int_eq(ops_free(ctx, a), 0);
    ck_assert_int_eq(ops_free(ctx, b), 0);
    ops_ctx_destroy(ctx);
}
END_TEST

// --- randomness -----------------------------------------------------------------------------------

START_TEST(test_randn) {
    philox_key key = {0x1234, 0x5678, 3, 0};
    size_t n = 1003;
    float *y = malloc(n * sizeof *y), *want = malloc(n * sizeof *want), *parts = malloc(n * sizeof *parts);
    ops_ctx *ctx = tops_ctx(2);
    for (uint64_t off = 0; off < 6; off += 5) { // aligned and unaligned offsets
        ck_assert_int_eq(ops_randn(ctx, y, n, key, off), 0);
        ref_randn(want, n, key, off);
        ck_assert_mem_eq(y, want, n * sizeof *y);
        // the same stream cut into calls of 1, 6 and n-7 elements
        ck_assert_int_eq(ops_randn(ctx, parts, 1, key, off), 0);
        ck_assert_int_eq(ops_randn(ctx, parts + 1, 6, key, off + 1), 0);
        ck_assert_int_eq(ops_randn(ctx, parts + 7, n - 7, key, off + 7), 0);
        ck_assert_mem_eq(parts, want, n * sizeof *y);
    }
    // another c2 word is another stream
    philox_key other = key;
    other.c2 = 4;
    ck_assert_int_eq(ops_randn(ctx, parts, n, other, 0), 0);
    ref_randn(want, n, key, 0);
    ck_assert(memcmp(parts, want, n * sizeof *y) != 0);
    ops_ctx_destroy(ctx);
    free(y), free(want), free(parts);
}
END_TEST

START_TEST(test_randn_moments) {
    size_t n = 200000;
    float *y = malloc(n * sizeof *y);
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_randn(ctx, y, n, (philox_key){1, 2, 0, 0}, 0), 0);
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++) m += y[i];
    m /= n;
    for (size_t i = 0; i < n; i++) v += (y[i] - m) * (y[i] - m);
    v /= n;
    ck_assert_msg(fabs(m) < 0.01 && fabs(v - 1) < 0.02, "randn mean %g var %g", m, v);
    ops_ctx_destroy(ctx);
    free(y);
}
END_TEST

START_TEST(test_dropout_fwd) {
    size_t n = 5001;
    philox_key key = {11, 12, 13, 14};
    float *x = ref_rand(n, 1, -1, 1), *y = malloc(n * sizeof *y);
    double *xd = ref_dup(x, n), *yd = malloc(n * sizeof *yd);
    ops_ctx *ctx = tops_ctx(2);
    static const float ps[] = {0.0f, 0.1f, 0.5f, 1.0f};
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(ops_dropout_fwd(ctx, y, x, n, ps[k], key, 77), 0);
        ref_dropout_fwd(yd, xd, n, ps[k], key, 77);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg((y[i] == 0) == (yd[i] == 0), "dropout mask differs at %zu (p %g)", i, (double)ps[k]);
            ck_assert(fabs(y[i] - yd[i]) <= 1e-6 * fabs(yd[i]));
            kept += y[i] != 0;
        }
        double frac = (double)kept / n;
        ck_assert_msg(fabs(frac - (1 - ps[k])) < 0.03, "dropout p %g kept %g", (double)ps[k], frac);
    }
    ck_assert_int_eq(ops_dropout_fwd(ctx, y, x, n, 1.5f, key, 0), ERR_USAGE);
    ops_ctx_destroy(ctx);
    free(x), free(y), free(xd), free(yd);
}
END_TEST

// --- optimisation ---------------------------------------------------------------------------------

START_TEST(test_optimisers) {
    size_t n = _i ? 70001 : 33; // one thread and several
    float *p = ref_rand(n, 1, -1, 1), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v), *g = malloc(n * sizeof *g);
    float *ps = ref_rand(n, 2, -1, 1), *buf = calloc(n, sizeof *buf), *pn = ref_rand(n, 3, -1, 1), *bn = calloc(n, sizeof *bn);
    float *e = ref_rand(n, 4, -1, 1);
    double *pd = ref_dup(p, n), *md = calloc(n, sizeof *md), *vd = calloc(n, sizeof *vd), *gd = malloc(n * sizeof *gd);
    double *psd = ref_dup(ps, n), *bufd = calloc(n, sizeof *bufd), *pnd = ref_dup(pn, n), *bnd = calloc(n, sizeof *bnd);
    double *ed = ref_dup(e, n);
    ops_ctx *ctx = tops_ctx(2);
    for (int step = 1; step <= 3; step++) {
        ref_fill_uniform(g, n, 10 + step, -0.5f, 0.5f);
        ref_to_double(gd, g, n);
        ck_assert_int_eq(ops_adamw(ctx, p, g, m, v, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, step), 0);
        ref_adamw(pd, gd, md, vd, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, step);
        ck_assert_int_eq(ops_sgd(ctx, ps, g, buf, n, 0.1f, 0.9f, 1e-3f, 0), 0);
        ref_sgd(psd, gd, bufd, n, 0.1f, 0.9f, 1e-3f, 0);
        ck_assert_int_eq(ops_sgd(ctx, pn, g, bn, n, 0.1f, 0.9f, 0.0f, 1), 0);
        ref_sgd(pnd, gd, bnd, n, 0.1f, 0.9f, 0.0f, 1);
        ck_assert_int_eq(ops_ema(ctx, e, p, n, 0.999f), 0);
        ref_ema(ed, pd, n, 0.999f);
    }
    ck_assert_double_le(ref_rel_err(p, pd, n), 1e-5);
    ck_assert_double_le(ref_rel_err(m, md, n), 1e-5);
    ck_assert_double_le(ref_rel_err(v, vd, n), 1e-5);
    ck_assert_double_le(ref_rel_err(ps, psd, n), 1e-5);
    ck_assert_double_le(ref_rel_err(buf, bufd, n), 1e-5);
    ck_assert_double_le(ref_rel_err(pn, pnd, n), 1e-5);
    ck_assert_double_le(ref_rel_err(e, ed, n), 1e-5);
    // plain SGD needs no buffer
    ck_assert_int_eq(ops_sgd(ctx, ps, g, NULL, n, 0.1f, 0.0f, 0.0f, 0), 0);
    ck_assert_int_eq(ops_sgd(ctx, ps, g, NULL, n, 0.1f, 0.9f, 0.0f, 0), ERR_USAGE);
    ck_assert_int_eq(ops_adamw(ctx, p, g, m, v, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, 0), ERR_USAGE);
    ops_ctx_destroy(ctx);
    free(p), free(m), free(v), free(g), free(ps), free(buf), free(pn), free(bn), free(e);
    free(pd), free(md), free(vd), free(gd), free(psd), free(bufd), free(pnd), free(bnd), free(ed);
}
END_TEST

// sum of squares: accurate (double), and the same bits whatever the thread count.
START_TEST(test_sumsq) {
    size_t n = 1000003;
    float *x = ref_rand(n, 5, -3, 3), out[3];
    for (int t = 1; t <= 3; t++) {
        ops_ctx *ctx = tops_ctx(t);
        ck_assert_int_eq(ops_sumsq(ctx, &out[t - 1], x, n), 0);
        ops_ctx_destroy(ctx);
    }
    double want = ref_sumsq(x, n);
    ck_assert_msg(fabs(out[0] - want) <= 1e-6 * want, "sumsq %g vs %g", (double)out[0], want);
    ck_assert_mem_eq(&out[0], &out[1], sizeof(float));
    ck_assert_mem_eq(&out[0], &out[2], sizeof(float));
    free(x);
}
END_TEST

// --- determinism ----------------------------------------------------------------------------------

// A UNet-like step (conv, groupnorm+swish, their backwards, losses) twice: identical bits.
static void det_run(int threads, float *out, size_t *nout) {
    ops_conv_shape s = {4, 24, 9, 11, 20, 3, 3, 1, 1, 1, 1, 1};
    size_t nx = 4 * 24 * 99, nw = 20 * 24 * 9, ny = 4 * 20 * 99;
    float *x = ref_rand(nx, 1, -1, 1), *w = ref_rand(nw, 2, -1, 1), *b = ref_rand(20, 3, -1, 1);
    float *ga = ref_rand(20, 4, 0.5, 1.5), *be = ref_rand(20, 5, -1, 1), *t = ref_rand(ny, 6, -1, 1);
    float *y = malloc(ny * sizeof *y), *z = malloc(ny * sizeof *z), mean[16], rstd[16];
    float *dz = calloc(ny, sizeof *dz), *dy = calloc(ny, sizeof *dy), *dx = calloc(nx, sizeof *dx);
    float *dw = calloc(nw, sizeof *dw), db[20] = {0}, dg[20] = {0}, dbe[20] = {0};
    ops_ctx *ctx = tops_ctx(threads);
    ck_assert_int_eq(ops_conv2d_fwd(ctx, &s, y, x, w, b), 0);
    ck_assert_int_eq(ops_groupnorm_fwd(ctx, OPS_ACT_SWISH, z, mean, rstd, y, ga, be, 4, 20, 99, 4, 1e-6f), 0);
    ck_assert_int_eq(ops_mse_sum_loss(ctx, out, dz, z, t, 4, 20 * 99), 0);
    ck_assert_int_eq(ops_groupnorm_bwd(ctx, OPS_ACT_SWISH, dy, dg, dbe, dz, y, mean, rstd, ga, be, 4, 20, 99, 4), 0);
    ck_assert_int_eq(ops_conv2d_bwd_data(ctx, &s, dx, dy, w), 0);
    ck_assert_int_eq(ops_conv2d_bwd_weight(ctx, &s, dw, db, dy, x), 0);
    ops_ctx_destroy(ctx);
    size_t k = 1;
    memcpy(out + k, dx, nx * sizeof *dx), k += nx;
    memcpy(out + k, dw, nw * sizeof *dw), k += nw;
    memcpy(out + k, db, sizeof db), k += 20;
    memcpy(out + k, dg, sizeof dg), k += 20;
    *nout = k;
    free(x), free(w), free(b), free(ga), free(be), free(t), free(y), free(z), free(dz), free(dy), free(dx), free(dw);
}

START_TEST(test_determinism) {
    size_t cap = 1 + 4 * 24 * 99 + 20 * 24 * 9 + 40, n1, n2;
    float *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
    det_run(2, a, &n1);
    det_run(2, b, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_mem_eq(a, b, n1 * sizeof *a);
    free(a), free(b);
}
END_TEST

// Outputs that ops assign (not accumulate) never depend on what their buffer held: the Winograd
// and im2col forward convolutions into a buffer full of NaN give the bits they give into zeros
// (Winograd's output transform once computed 0 * y + o: NaN garbage in a reused arena made NaN
// logits, and which tests failed depended on the order they ran in).
START_TEST(test_assigned_outputs_ignore_garbage) {
    ops_ctx *ctx = tops_ctx(1);
    const int chans[] = {8, 4}; // 8: Winograd; 4: im2col + sgemm
    for (int k = 0; k < 2; k++) {
        int c = chans[k];
        ops_conv_shape s = {3, c, 14, 14, c, 3, 3, 1, 1, 1, 1, 1};
        size_t nx = (size_t)3 * c * 14 * 14, nw = (size_t)c * c * 9;
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *bias = malloc((size_t)c * 4), *y0 = malloc(nx * 4),
              *y1 = malloc(nx * 4);
        ref_fill_uniform(x, nx, 3, -1, 1);
        ref_fill_uniform(w, nw, 4, -1, 1);
        ref_fill_uniform(bias, (size_t)c, 5, -1, 1);
        for (int withb = 0; withb < 2; withb++) {
            memset(y0, 0, nx * 4);
            for (size_t i = 0; i < nx; i++) y1[i] = NAN;
            ck_assert_int_eq(ops_conv2d_fwd(ctx, &s, y0, x, w, withb ? bias : NULL), 0);
            ck_assert_int_eq(ops_conv2d_fwd(ctx, &s, y1, x, w, withb ? bias : NULL), 0);
            ck_assert_msg(memcmp(y0, y1, nx * 4) == 0, "conv %d->%d (bias %d): the output depends on the buffer's "
                          "old contents", c, c, withb);
        }
        free(x), free(w), free(bias), free(y0), free(y1);
    }
    ops_ctx_destroy(ctx);
}
END_TEST

// --- errors ---------------------------------------------------------------------------------------

static void expect_err(int rc, int code, const char *op) {
    ck_assert_int_eq(rc, code);
    ck_assert_msg(strstr(err_msg(), op) != NULL, "message '%s' does not name %s", err_msg(), op);
}

START_TEST(test_errors) {
    ops_ctx *ctx = tops_ctx(1);
    float buf[64] = {0}, loss;
    ops_conv_shape s = {1, 2, 4, 4, 3, 3, 3, 1, 0, 0, 0, 0};
    ops_conv_shape bad = s;
    bad.stride = 0;
    expect_err(ops_conv2d_fwd(ctx, &bad, buf, buf, buf, NULL), ERR_USAGE, "conv2d_fwd");
    bad = s, bad.kh = 5; // output height <= 0
    expect_err(ops_conv2d_bwd_data(ctx, &bad, buf, buf, buf), ERR_USAGE, "conv2d_bwd_data");
    bad = s, bad.pad_l = -1;
    expect_err(ops_conv2d_bwd_weight(ctx, &bad, buf, NULL, buf, buf), ERR_USAGE, "conv2d_bwd_weight");
    bad = s, bad.n = 0;
    expect_err(ops_conv2d_fwd(ctx, &bad, buf, buf, buf, NULL), ERR_USAGE, "(0, 2, 4, 4)");
    expect_err(ops_groupnorm_fwd(ctx, OPS_ACT_NONE, buf, buf, buf, buf, buf, buf, 1, 6, 2, 4, 1e-6f), ERR_USAGE,
               "groupnorm_fwd");
    expect_err(ops_groupnorm_bwd(ctx, OPS_ACT_NONE, buf, buf, buf, buf, buf, buf, buf, buf, buf, 1, 6, 2, 0), ERR_USAGE,
               "groups=0");
    expect_err(ops_groupnorm_fwd(ctx, (ops_act)7, buf, buf, buf, buf, buf, buf, 1, 4, 2, 2, 1e-6f), ERR_USAGE,
               "activation");
    expect_err(ops_batchnorm_fwd_train(ctx, OPS_ACT_NONE, buf, buf, buf, buf, buf, buf, buf, buf, 1, 3, 1, 0.1f, 1e-5f),
               ERR_USAGE, "batchnorm_fwd_train");
    int one[2] = {1, 0};
    expect_err(ops_batchnorm_stats_merge(ctx, buf, NULL, buf, NULL, NULL, buf, one, 1, 3, 0.1f, 1e-5f), ERR_USAGE,
               "training needs more than one");
    expect_err(ops_batchnorm_stats_merge(ctx, buf, NULL, buf, NULL, NULL, buf, one, 2, 3, 0.1f, 1e-5f), ERR_USAGE,
               "slice 1 has 0 values");
    expect_err(ops_batchnorm_stats(ctx, buf, buf, 0, 3, 1), ERR_USAGE, "batchnorm_stats");
    expect_err(ops_batchnorm_bwd_sums(ctx, (ops_act)7, buf, buf, buf, buf, buf, NULL, NULL, 1, 3, 1), ERR_USAGE,
               "activation");
    expect_err(ops_batchnorm_bwd_dx(ctx, OPS_ACT_NONE, buf, buf, buf, buf, buf, NULL, NULL, buf, 3, 2, 2, 2), ERR_USAGE,
               "count 3 below");
    expect_err(ops_linear_fwd(ctx, buf, buf, buf, NULL, 2, -1, 3), ERR_USAGE, "linear_fwd");
    expect_err(ops_bmm(ctx, buf, buf, buf, 1, 0, 2, 2, 0, 0, 1, 0), ERR_USAGE, "bmm");
    expect_err(ops_softmax_fwd(ctx, buf, buf, 0, 3, 1), ERR_USAGE, "softmax_fwd");
    expect_err(ops_upsample2x_fwd(ctx, buf, buf, 1, 1, 0, 2), ERR_USAGE, "upsample2x_fwd");
    expect_err(ops_concat_fwd(ctx, buf, buf, buf, 1, 0, 1, 1), ERR_USAGE, "concat_fwd");
    expect_err(ops_timestep_embedding(ctx, buf, buf, 1, 1), ERR_USAGE, "timestep_embedding");
    int32_t ids[2] = {1, 5};
    expect_err(ops_embedding_fwd(ctx, buf, buf, ids, 2, 5, 2), ERR_INPUT, "id 5");
    expect_err(ops_embedding_bwd(ctx, buf, buf, ids, 2, 5, 2), ERR_INPUT, "embedding_bwd");
    ids[1] = -1;
    expect_err(ops_softmax_xent_loss(ctx, &loss, buf, buf, ids, 2, 3), ERR_INPUT, "label -1");
    ops_ctx_destroy(ctx);
}
END_TEST

// An OpenMP `if` clause without a modifier applies to `simd` too (OpenMP 5.0): `parallel for
// simd ... if (nt > 1)` ran every one-thread call of the loop scalar (perf: ReLU's backward was
// 10% of a ResNet training step). Every combined simd construct must say `if(parallel: ...)`.
START_TEST(test_simd_if_clauses_name_parallel) {
    char out[4096];
    int rc = tu_capture("grep -nE 'for simd.*[ )]if *\\(' kernels/cpu/*.c kernels/cpu/*.h | grep -v 'if(parallel:'",
                        out, sizeof out);
    ck_assert_msg(rc == 1 && !out[0], "simd constructs whose if clause turns vectorisation off:\n%s", out);
    ck_assert_int_eq(tu_capture("grep -c 'if(parallel:' kernels/cpu/cpu_elementwise.c", out, sizeof out), 0);
}
END_TEST

Suite *suite_ops_misc(void) {
    Suite *s = suite_create("ops_misc");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_memory);
    tcase_add_test(tc, test_randn);
    tcase_add_test(tc, test_randn_moments);
    tcase_add_test(tc, test_dropout_fwd);
    tcase_add_loop_test(tc, test_optimisers, 0, 2);
    tcase_add_test(tc, test_sumsq);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_assigned_outputs_ignore_garbage);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_simd_if_clauses_name_parallel);
    suite_add_tcase(s, tc);
    return s;
}
