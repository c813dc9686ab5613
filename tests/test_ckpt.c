// Tests of common/train/ckpt.h on checkpoints trained by $DIFFOOD_BIN/train --config tiny on a
// tiny store: the classifier's logits give the accuracy `train --eval` reports, the u8 and
// float inputs agree, the batch size does not matter; the denoiser holds the EMA table and the
// schedule, and its validation loss is METHOD.md 3's formula recomputed here; wrong-model,
// incomplete, missing, mismatched and transposed-weight checkpoints are refused by name.
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/rng.h"
#include "common/store.h"
#include "common/train/ckpt.h"
#include "common/train/tr.h"
#include "tests/test_train_util.h"

#define CK_N 40 // images of the tiny store (1 x 16 x 16)

static void ck_setup(void) {
    trt_setup();
    trt_make_store(trt_path("data"), CK_N, 1, 16, 1);
}

static void ck_train_classifier(const char *out) {
    const char *args[] = {"--model", "classifier", "--data", trt_path("data"), "--out", out, "--config", "tiny",
                          "--threads", "1", "--set", "train_classifier.batch=8", "--set", "train_classifier.epochs=3",
                          "--set", "train_classifier.lr=0.05", "--quiet", NULL};
    ck_assert_msg(trt_run(args) == 0, "train classifier failed: %s", trt_stderr());
}

static void ck_train_denoiser(const char *out) {
    const char *args[] = {"--model", "diffusion", "--data", trt_path("data"), "--out", out, "--config", "tiny",
                          "--threads", "1", "--set", "unet.image_size=16", "--set", "train_diffusion.steps=6",
                          "--set", "train_diffusion.warmup=2", "--set", "train_diffusion.checkpoint_every=3",
                          "--quiet", NULL};
    ck_assert_msg(trt_run(args) == 0, "train diffusion failed: %s", trt_stderr());
}

static ops_ctx *ck_ctx(void) {
    ops_ctx *ctx = NULL;
    ops_options oo = ops_options_default();
    oo.threads = 1;
    ck_assert_int_eq(ops_ctx_create_named(&ctx, "cpu", &oo), 0);
    return ctx;
}

START_TEST(test_ckpt_classifier_matches_eval) {
    const char *ck = trt_path("cls");
    ck_train_classifier(ck);
    const char *ev[] = {"--model", "classifier", "--out", ck, "--eval", trt_path("data"), "--threads", "1", NULL};
    ck_assert_int_eq(trt_run(ev), 0);
    cJSON *j = cJSON_Parse(trt_stdout());
    ck_assert_ptr_nonnull(j);
    double eval_acc = cJSON_GetObjectItem(j, "accuracy")->valuedouble;
    cJSON_Delete(j);

    tr_images d;
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(tr_images_load(&d, trt_path("data"), 10), 0);
    ops_ctx *ctx = ck_ctx();
    ckpt_classifier c;
    ck_assert_msg(ckpt_classifier_open(&c, ck, ctx, 1, 16, 7) == 0, "%s", err_msg());
    ck_assert_int_eq(ckpt_classifier_classes(&c), 10);
    ck_assert_int_eq(ckpt_classifier_feature_dim(&c), 32); // 8 * width 4
    ck_assert_int_eq((int)strlen(c.key), HASH_HEX_LEN);
    char *key = NULL;
    ck_assert_int_eq(ts_meta_get(c.store, "key", &key), 0);
    ck_assert_str_eq(key, c.key);
    free(key);

    int K = 10, D = 32, P = 256;
    float *lg = malloc(sizeof(float) * CK_N * K), *ft = malloc(sizeof(float) * CK_N * D);
    float *lg1 = malloc(sizeof(float) * K), *ft1 = malloc(sizeof(float) * D);
    float *x01 = malloc(sizeof(float) * 7 * P), *lgf = malloc(sizeof(float) * 7 * K);
    int correct = 0;
    for (int i0 = 0; i0 < CK_N; i0 += 7) {
        int nb = CK_N - i0 < 7 ? CK_N - i0 : 7;
        ck_assert_int_eq(ckpt_classifier_run(&c, d.img + (size_t)i0 * P, NULL, nb, lg + i0 * K, ft + i0 * D), 0);
        // the same images as floats in [0, 1]: bit-identical logits
        for (int k = 0; k < nb * P; k++) x01[k] = (float)d.img[(size_t)i0 * P + k] / 255.0f;
        ck_assert_int_eq(ckpt_classifier_run(&c, NULL, x01, nb, lgf, NULL), 0);
        ck_assert_int_eq(memcmp(lgf, lg + i0 * K, sizeof(float) * nb * K), 0);
    }
    for (int i = 0; i < CK_N; i++) {
        int best = 0;
        for (int k = 1; k < K; k++)
            if (lg[i * K + k] > lg[i * K + best]) best = k;
        correct += best == d.label[i];
        for (int k = 0; k < D; k++) ck_assert(ft[i * D + k] >= 0); // after ReLU and pooling
    }
    double acc = (double)correct / CK_N;
    ck_assert_msg(acc == eval_acc, "accuracy %.4f from ckpt, %.4f from train --eval", acc, eval_acc);
    double acc2 = -1;
    ck_assert_int_eq(tr_classifier_eval(c.store, ctx, &d, 16, &acc2), 0);
    ck_assert(acc == acc2);
    // one image at a time: the same numbers up to rounding
    for (int i = 0; i < CK_N; i += 13) {
        ck_assert_int_eq(ckpt_classifier_run(&c, d.img + (size_t)i * P, NULL, 1, lg1, ft1), 0);
        for (int k = 0; k < K; k++) ck_assert_float_eq_tol(lg1[k], lg[i * K + k], 1e-4f);
        for (int k = 0; k < D; k++) ck_assert_float_eq_tol(ft1[k], ft[i * D + k], 1e-4f);
    }
    // too many images, neither or both inputs
    ck_assert_int_eq(ckpt_classifier_run(&c, d.img, NULL, 8, lg, NULL), ERR_USAGE);
    ck_assert_int_eq(ckpt_classifier_run(&c, NULL, NULL, 1, lg, NULL), ERR_USAGE);
    ckpt_classifier_close(&c);
    ckpt_classifier_close(&c); // twice is harmless

    // channel mismatch names the store
    ck_assert_int_eq(ckpt_classifier_open(&c, ck, ctx, 3, 16, 4), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), ck));
    ck_assert_ptr_nonnull(strstr(err_msg(), "3 channels"));

    // an incomplete checkpoint is refused
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, ck, 0), 0);
    ck_assert_int_eq(ts_meta_put(s, "complete", "false"), 0);
    ts_close(s);
    ck_assert_int_eq(ckpt_classifier_open(&c, ck, ctx, 1, 16, 4), ERR_INPUT);
    char want[512];
    snprintf(want, sizeof want, "%s: incomplete checkpoint (train has not finished: rerun train)", ck);
    ck_assert_str_eq(err_msg(), want);

    free(lg);
    free(ft);
    free(lg1);
    free(ft1);
    free(x01);
    free(lgf);
    tr_images_free(&d);
    ops_ctx_destroy(ctx);
}
END_TEST

// The validation loss the denoiser's training wrote for its last step, recomputed here from
// METHOD.md 3 with the checkpoint's EMA weights: per bucket b of 10 over 0..I-1 (I = 100 in
// config tiny), t = (2b + 1) I / 20; image j of the validation set (here the training store)
// in [-1, 1], noise n = normals j*CHW.. of rng_stream(seed, RNG_TRAIN_NOISE, 2^63 + b),
// x_t = sqrt(abar[t]) x0 + sqrt(1 - abar[t]) n, loss = sum over CHW of (eps(x_t, t, y) - n)^2,
// mean over the images. Catches a training-side noising that is not the formula (abar[t + 1], a
// missing square root, noise not drawn per image) as well as a loss of another scale.
static void ck_check_val_loss(const char *dn, ops_ctx *ctx) {
    enum { B = 8, P = 256, BUCKETS = 10, I = 100 };
    tr_images v;
    ck_assert_int_eq(tr_images_load(&v, trt_path("data"), 10), 0);
    ckpt_denoiser d;
    ck_assert_msg(ckpt_denoiser_open(&d, dn, ctx, B) == 0, "%s", err_msg());
    ck_assert_int_eq(d.iter_interval, I);
    int n = 0;
    float *rows = trt_read_rows(dn, "val_loss", BUCKETS, &n);
    ck_assert_int_eq(n, 2); // steps 3 and 6; the EMA weights are step 6's
    const float *want = rows + BUCKETS;
    static float x[B * P], nz[B * P];
    float t[B], loss = 0;
    int32_t y[B];
    float *dx = NULL, *dt = NULL, *deps = NULL, *dnz = NULL, *dl = NULL, *dg = NULL;
    int32_t *dy = NULL;
    ck_assert_int_eq(ops_alloc(ctx, (void **)&dx, sizeof x), 0);
    ck_assert_int_eq(ops_alloc(ctx, (void **)&deps, sizeof x), 0);
    ck_assert_int_eq(ops_alloc(ctx, (void **)&dnz, sizeof x), 0);
    ck_assert_int_eq(ops_alloc(ctx, (void **)&dg, sizeof x), 0);
    ck_assert_int_eq(ops_alloc(ctx, (void **)&dt, sizeof t), 0);
    ck_assert_int_eq(ops_alloc(ctx, (void **)&dy, sizeof y), 0);
    ck_assert_int_eq(ops_alloc(ctx, (void **)&dl, sizeof(float)), 0);
    for (int b = 0; b < BUCKETS; b++) {
        int tb = (2 * b + 1) * I / (2 * BUCKETS);
        double ab = d.sch.abar[tb], sum = 0;
        philox_key kn = rng_stream(1234, RNG_TRAIN_NOISE, (1ull << 63) + (uint64_t)b, 0, 0);
        for (int j0 = 0; j0 < CK_N; j0 += B) { // blocks of the training batch, as the stage runs them
            rng_fill_normal(kn, (uint64_t)j0 * P, nz, (size_t)B * P);
            for (int i = 0; i < B; i++) {
                for (int p = 0; p < P; p++) {
                    double x0 = v.img[(size_t)(j0 + i) * P + p] / 127.5 - 1.0;
                    x[i * P + p] = (float)(sqrt(ab) * x0 + sqrt(1.0 - ab) * nz[i * P + p]);
                }
                t[i] = (float)tb;
                y[i] = v.label[j0 + i];
            }
            ck_assert_int_eq(ops_upload(ctx, dx, x, sizeof x), 0);
            ck_assert_int_eq(ops_upload(ctx, dnz, nz, sizeof nz), 0);
            ck_assert_int_eq(ops_upload(ctx, dt, t, sizeof t), 0);
            ck_assert_int_eq(ops_upload(ctx, dy, y, sizeof y), 0);
            ck_assert_int_eq(unet_forward(d.model, deps, dx, dt, dy, B, 0, (philox_key){0, 0, 0, 0}), 0);
            ck_assert_int_eq(ops_mse_sum_loss(ctx, dl, dg, deps, dnz, B, P), 0);
            ck_assert_int_eq(ops_download(ctx, &loss, dl, sizeof loss), 0);
            sum += (double)loss * B;
        }
        double got = sum / CK_N;
        ck_assert_msg(fabs(got - want[b]) <= 1e-5 * fabs(want[b]), // a few float roundings apart
                      "val_loss bucket %d (t = %d): training wrote %.7g, the formula gives %.7g", b, tb,
                      (double)want[b], got);
    }
    float *bufs[] = {dx, dt, deps, dnz, dl, dg, (float *)dy};
    for (int i = 0; i < 7; i++) ops_free(ctx, bufs[i]);
    free(rows);
    ckpt_denoiser_close(&d);
    tr_images_free(&v);
}

START_TEST(test_ckpt_denoiser_and_refusals) {
    const char *dn = trt_path("den");
    ck_train_denoiser(dn);
    ops_ctx *ctx = ck_ctx();
    ck_check_val_loss(dn, ctx);
    ckpt_denoiser d;
    ck_assert_msg(ckpt_denoiser_open(&d, dn, ctx, 3) == 0, "%s", err_msg());
    ck_assert_int_eq(d.cfg.ch, 8);
    ck_assert_int_eq(d.cfg.image_size, 16);
    ck_assert_int_eq(d.sch.T, 1000);
    ck_assert_int_eq(d.max_batch, 3);
    // the weights are the `ema` table's (not `param`)
    nn_net *net = unet_net(d.model);
    const float *w = nn_param_find(net, "conv_in.weight");
    ck_assert_ptr_nonnull(w);
    size_t off = (size_t)(w - net->params);
    ts_key k;
    ts_tensor ema, par;
    ck_assert_int_eq(ts_key_str(&k, "conv_in.weight"), 0);
    ck_assert_int_eq(ts_get(d.store, "ema", &k, &ema), 0);
    ck_assert_int_eq(ts_get(d.store, "param", &k, &par), 0);
    size_t n = (size_t)ts_tensor_numel(&ema);
    float *h = malloc(sizeof(float) * net->n_params);
    ck_assert_int_eq(ops_download(ctx, h, net->params, sizeof(float) * net->n_params), 0);
    ck_assert_int_eq(memcmp(h + off, ema.data, sizeof(float) * n), 0);
    ck_assert_int_ne(memcmp(ema.data, par.data, sizeof(float) * n), 0);
    ts_tensor_free(&par);
    free(h);
    ckpt_denoiser_close(&d);

    // a weight of the right count but another shape (conv_in.weight (8, 1, 3, 3) stored as
    // (1, 8, 3, 3), a transposed import) is refused, naming the tensor and both shapes
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", dn, trt_path("den_t"));
    ck_assert_int_eq(system(cmd), 0);
    ts_store *ws = NULL;
    ck_assert_int_eq(ts_open(&ws, trt_path("den_t"), 0), 0);
    ck_assert_int_eq(ema.rank, 4);
    ck_assert(ema.shape[0] != ema.shape[1]);
    int64_t sh = ema.shape[0];
    ema.shape[0] = ema.shape[1];
    ema.shape[1] = sh;
    ck_assert_int_eq(ts_begin_write(ws), 0);
    ck_assert_int_eq(ts_put(ws, "ema", &k, &ema, TS_CODEC_RAW), 0);
    ck_assert_int_eq(ts_commit(ws), 0);
    ts_close(ws);
    ts_tensor_free(&ema);
    ck_assert_int_eq(ckpt_denoiser_open(&d, trt_path("den_t"), ctx, 3), ERR_CORRUPT);
    ck_assert_msg(strstr(err_msg(), "'conv_in.weight' is f32 [1, 8, 3, 3], the network's tensor is f32 [8, 1, 3, 3]"),
                  "%s", err_msg());

    // wrong model, both ways
    ckpt_classifier c;
    char want[512];
    ck_assert_int_eq(ckpt_classifier_open(&c, dn, ctx, 1, 16, 4), ERR_INPUT);
    snprintf(want, sizeof want, "%s: not a classifier checkpoint (model=diffusion)", dn);
    ck_assert_str_eq(err_msg(), want);
    ck_assert_int_eq(ckpt_denoiser_open(&d, trt_path("data"), ctx, 4), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), trt_path("data")));
    // no store
    ck_assert_int_eq(ckpt_denoiser_open(&d, trt_path("nothing"), ctx, 4), ERR_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err_msg(), trt_path("nothing")));
    ops_ctx_destroy(ctx);
}
END_TEST

Suite *suite_ckpt(void) {
    Suite *s = suite_create("ckpt");
    TCase *tc = tcase_create("ckpt");
    tcase_add_checked_fixture(tc, ck_setup, trt_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_ckpt_classifier_matches_eval);
    tcase_add_test(tc, test_ckpt_denoiser_and_refusals);
    suite_add_tcase(s, tc);
    return s;
}
