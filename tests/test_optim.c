// test_optim: the optimisers of common/nn/optim.h against PyTorch on a flat vector
// (tests/data/nn/optim: AdamW with warm-up and clipping, SGD Nesterov with cosine annealing,
// EMA), the learning-rate schedules at known points, and gradient-norm clipping.
// Golden-file helpers come from test_unet.c.
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/nn/optim.h"

const char *nn_test_dir(const char *sub, char *buf, size_t cap);
float *nn_test_load(const char *dir, const char *file, size_t *n);
void nn_test_compare(const char *what, const float *got, const float *want, size_t n, double tol);
float *nn_test_device(ops_ctx *ctx, const void *host, size_t bytes);
ops_ctx *nn_test_ctx(void);

// Runs `steps` steps of `o` from p0 with the golden pseudo-gradients; EMA (rate 0.9) when ema.
static void run_steps(ops_ctx *ctx, optim *o, const float *p0, const float *grads, size_t n, int steps, float *out,
                      float *ema_out) {
    float *p = nn_test_device(ctx, p0, n * 4), *g = nn_test_device(ctx, NULL, n * 4);
    optim_ema *e = NULL;
    if (ema_out) ck_assert_int_eq(optim_ema_create(&e, ctx, p, n, 0.9f), 0);
    for (int s = 0; s < steps; s++) {
        ck_assert_int_eq(ops_upload(ctx, g, grads + (size_t)s * n, n * 4), 0);
        ck_assert_int_eq(optim_step(o, p, g, NULL), 0);
        if (e) ck_assert_int_eq(optim_ema_update(e, p), 0);
    }
    ck_assert_int_eq(optim_steps(o), steps);
    ck_assert_int_eq(ops_download(ctx, out, p, n * 4), 0);
    if (e) ck_assert_int_eq(ops_download(ctx, ema_out, optim_ema_params(e), n * 4), 0);
    optim_ema_destroy(e);
    ops_free(ctx, p);
    ops_free(ctx, g);
}

START_TEST(test_optim_golden) {
    char dir[1100];
    nn_test_dir("optim", dir, sizeof dir);
    size_t n = 0, ng = 0, k = 0;
    float *p0 = nn_test_load(dir, "p0.npy", &n), *grads = nn_test_load(dir, "grads.npy", &ng);
    int steps = (int)(ng / n);
    ck_assert_int_eq(steps, 5);
    ops_ctx *ctx = nn_test_ctx();
    float *got = malloc(n * 4), *ema = malloc(n * 4), *want;
    // the values of tools/torchref/make_golden.py (ADAMW, SGD with total = 5 steps)
    optim_adamw_config ac = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f,
                             .warmup = 4, .decay_every = 0, .decay_factor = 1.0f, .clip_norm = 1.0f};
    optim *o = NULL;
    ck_assert_int_eq(optim_adamw_create(&o, ctx, n, &ac), 0);
    run_steps(ctx, o, p0, grads, n, steps, got, ema);
    optim_destroy(o);
    want = nn_test_load(dir, "adamw.npy", &k);
    nn_test_compare("AdamW parameters", got, want, n, 1e-5);
    free(want);
    want = nn_test_load(dir, "ema.npy", &k);
    nn_test_compare("EMA parameters", ema, want, n, 1e-5);
    free(want);
    optim_sgd_config sc = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1, .total_steps = 5,
                           .lr_floor = 1e-6f, .clip_norm = 0.0f};
    ck_assert_int_eq(optim_sgd_create(&o, ctx, n, &sc), 0);
    run_steps(ctx, o, p0, grads, n, steps, got, NULL);
    optim_destroy(o);
    want = nn_test_load(dir, "sgd.npy", &k);
    nn_test_compare("SGD parameters", got, want, n, 1e-5);
    free(want);
    free(got);
    free(ema);
    free(p0);
    free(grads);
    ops_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_optim_schedules) {
    ops_ctx *ctx = nn_test_ctx();
    optim *o = NULL;
    optim_adamw_config ac = optim_adamw_default();
    ck_assert_int_eq(optim_adamw_create(&o, ctx, 4, &ac), 0);
    ck_assert_double_eq_tol(optim_lr(o, 0), 2e-4 / 5000, 1e-12);   // first step: 1/5000 of lr
    ck_assert_double_eq_tol(optim_lr(o, 2499), 1e-4, 1e-10);       // half-way
    ck_assert_double_eq_tol(optim_lr(o, 4999), 2e-4, 1e-10);       // warm-up done
    ck_assert_double_eq_tol(optim_lr(o, 100000), 2e-4, 1e-10);     // constant after
    optim_destroy(o);
    ac.warmup = 0;
    ac.decay_every = 10;
    ac.decay_factor = 0.5f;
    ck_assert_int_eq(optim_adamw_create(&o, ctx, 4, &ac), 0);
    ck_assert_double_eq_tol(optim_lr(o, 9), 2e-4, 1e-10);
    ck_assert_double_eq_tol(optim_lr(o, 10), 1e-4, 1e-10);
    ck_assert_double_eq_tol(optim_lr(o, 25), 5e-5, 1e-10);
    optim_destroy(o);
    optim_sgd_config sc = optim_sgd_default();
    sc.total_steps = 100;
    ck_assert_int_eq(optim_sgd_create(&o, ctx, 4, &sc), 0);
    ck_assert_double_eq_tol(optim_lr(o, 0), 0.1, 1e-8);
    ck_assert_double_eq_tol(optim_lr(o, 50), 0.05 + 0.5e-6, 1e-8);
    ck_assert_double_eq_tol(optim_lr(o, 100), 1e-6, 1e-12);
    ck_assert_double_eq_tol(optim_lr(o, 1000), 1e-6, 1e-12); // stays at the floor
    optim_destroy(o);
    ac = optim_adamw_default();
    ac.beta1 = 1.0f;
    ck_assert_int_eq(optim_adamw_create(&o, ctx, 4, &ac), ERR_CONFIG);
    optim_ema *e = NULL;
    ck_assert_int_eq(optim_ema_create(&e, ctx, NULL, 4, 1.5f), ERR_CONFIG);
    ops_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_optim_clip) {
    ops_ctx *ctx = nn_test_ctx();
    float h[4] = {3, 0, 0, 4}, out[4], norm = 0;
    float *g = nn_test_device(ctx, h, 16), *tmp = nn_test_device(ctx, NULL, 4);
    ck_assert_int_eq(optim_clip_grad_norm(ctx, g, 4, 10.0f, tmp, &norm), 0); // below: unchanged
    ck_assert_float_eq_tol(norm, 5.0f, 1e-6f);
    ck_assert_int_eq(ops_download(ctx, out, g, 16), 0);
    ck_assert(out[0] == 3.0f && out[3] == 4.0f);
    ck_assert_int_eq(optim_clip_grad_norm(ctx, g, 4, 1.0f, tmp, &norm), 0); // above: scaled to norm 1
    ck_assert_int_eq(ops_download(ctx, out, g, 16), 0);
    ck_assert_float_eq_tol(out[0], 0.6f, 1e-6f);
    ck_assert_float_eq_tol(out[3], 0.8f, 1e-6f);
    ops_free(ctx, g);
    ops_free(ctx, tmp);
    ops_ctx_destroy(ctx);
}
END_TEST

Suite *suite_optim(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_add_test(tc, test_optim_golden);
    tcase_add_test(tc, test_optim_schedules);
    tcase_add_test(tc, test_optim_clip);
    suite_add_tcase(s, tc);
    return s;
}
