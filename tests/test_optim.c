// test_optim: the optimisers of common/nn/optim.h against PyTorch on a flat vector
// (tests/data/nn/optim: AdamW with the reference's LambdaLR warm-up and step decay and
// clipping, SGD Nesterov with OpenOOD's cosine LambdaLR, EMA; the learning rate of every step as
// torch's scheduler handed it out), the schedules at known points, and gradient-norm clipping.
// Golden-file helpers come from test_unet.c.
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/nn/optim.h"

const char *nn_test_dir(const char *sub, char *buf, size_t cap);
float *nn_test_load(const char *dir, const char *file, size_t *n);
double *nn_test_load_f64(const char *dir, const char *file, size_t *n);
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
    ck_assert_int_eq(steps, 8);
    ops_ctx *ctx = nn_test_ctx();
    float *got = malloc(n * 4), *ema = malloc(n * 4), *want;
    // the values of tools/torchref/make_golden.py (OPTIM_ADAMW: warm-up 3, then x0.5 every 2
    // steps; SGD with total = 8 steps)
    optim_adamw_config ac = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f,
                             .warmup = 3, .decay_every = 2, .decay_factor = 0.5f, .clip_norm = 1.0f};
    optim *o = NULL;
    ck_assert_int_eq(optim_adamw_create(&o, ctx, n, &ac), 0);
    // the lr of every step is the one torch's LambdaLR gave (first step 0, decay after warm-up)
    size_t nlr = 0;
    double *lrs = nn_test_load_f64(dir, "adamw_lrs.npy", &nlr);
    ck_assert_uint_eq(nlr, (size_t)steps);
    for (int s = 0; s < steps; s++)
        ck_assert_msg(fabs(optim_lr(o, s) - lrs[s]) <= 1e-7 * lrs[s], "AdamW step %d: lr %.10g, torch's LambdaLR %.10g", s,
                      optim_lr(o, s), lrs[s]);
    ck_assert(lrs[0] == 0.0); // the golden really has the reference's warm-up
    free(lrs);
    run_steps(ctx, o, p0, grads, n, steps, got, ema);
    optim_destroy(o);
    want = nn_test_load(dir, "adamw.npy", &k);
    nn_test_compare("AdamW parameters", got, want, n, 1e-5);
    free(want);
    want = nn_test_load(dir, "ema.npy", &k);
    nn_test_compare("EMA parameters", ema, want, n, 1e-5);
    free(want);
    optim_sgd_config sc = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1, .total_steps = 8,
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

// optim_lr(o, step) equals want up to the float rounding of the configured lr
#define ck_assert_lr(o, step, want)                                                                          \
    ck_assert_msg(fabs(optim_lr(o, step) - (want)) <= 1e-7 * (want), "lr of step %d: %.10g, expected %.10g", \
                  step, optim_lr(o, step), (double)(want))

START_TEST(test_optim_schedules) {
    ops_ctx *ctx = nn_test_ctx();
    optim *o = NULL;
    optim_adamw_config ac = optim_adamw_default();
    ck_assert_int_eq(optim_adamw_create(&o, ctx, 4, &ac), 0);
    // the reference's LambdaLR stepped after the optimiser: step k uses lr * k / warmup
    ck_assert(optim_lr(o, 0) == 0.0); // first step: lr 0
    ck_assert_lr(o, 1, 2e-4 / 5000);
    ck_assert_lr(o, 2500, 1e-4);               // half-way
    ck_assert_lr(o, 4999, 2e-4 * 4999 / 5000); // last warm-up step
    ck_assert_lr(o, 5000, 2e-4);               // warm-up done
    ck_assert_lr(o, 100000, 2e-4);             // constant after
    optim_destroy(o);
    // step decay counts from the end of the warm-up: gamma^((k - warmup) // every)
    ac.warmup = 5;
    ac.decay_every = 10;
    ac.decay_factor = 0.5f;
    ck_assert_int_eq(optim_adamw_create(&o, ctx, 4, &ac), 0);
    ck_assert_lr(o, 4, 2e-4 * 4 / 5);
    ck_assert_lr(o, 10, 2e-4);
    ck_assert_lr(o, 14, 2e-4);
    ck_assert_lr(o, 15, 1e-4);
    ck_assert_lr(o, 25, 5e-5);
    ck_assert_lr(o, 35, 2.5e-5);
    optim_destroy(o);
    ac.warmup = 0; // no warm-up: the first step has the full lr, decay from step 0
    ck_assert_int_eq(optim_adamw_create(&o, ctx, 4, &ac), 0);
    ck_assert_lr(o, 0, 2e-4);
    ck_assert_lr(o, 9, 2e-4);
    ck_assert_lr(o, 10, 1e-4);
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
