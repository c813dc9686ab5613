// Tests of the denoiser's training batch (common/train/tr.h, tr_batch_draw; METHOD.md 3) over
// many steps of a small in-memory image set: antithetic timestep pairs summing to I-1, every t in
// 0..I-1 (I = iter_interval, not T), the null label at rate 1 - cond_ratio and the true label
// otherwise, horizontal flips of about half the images (the pixels really mirrored), and a batch
// that depends only on (seed, step).
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/err.h"
#include "common/train/tr.h"

#define TB_N 50   // images
#define TB_C 1
#define TB_S 4    // 4 x 4 pixels
#define TB_P (TB_C * TB_S * TB_S)
#define TB_K 10
#define TB_I 100  // iter_interval (T stays 1000)
#define TB_B 7    // odd: ceil(7/2) = 4 draws, 3 antithetic partners
#define TB_STEPS 400

static cfg *tb_cfg(double cond_ratio, int flip) {
    char y[512];
    snprintf(y, sizeof y,
             "diffusion:\n  T: 1000\n  iter_interval: %d\n  cond_ratio: %g\n"
             "unet:\n  num_classes: %d\n"
             "train_diffusion:\n  batch: %d\n  random_flip: %s\n  seed: 42\n",
             TB_I, cond_ratio, TB_K, TB_B, flip ? "true" : "false");
    cfg *c = NULL;
    ck_assert_msg(cfg_parse_text(&c, y, strlen(y), "batch.yml") == 0, "%s", err_msg());
    return c;
}

// Images whose every row differs from its mirror (no image equals its own flip), labels i % K.
static void tb_images(tr_images *d) {
    memset(d, 0, sizeof *d);
    d->n = TB_N, d->c = TB_C, d->h = TB_S, d->w = TB_S;
    d->img = malloc(TB_N * TB_P);
    d->label = malloc(sizeof(int32_t) * TB_N);
    for (int i = 0; i < TB_N; i++) {
        for (int p = 0; p < TB_P; p++) d->img[i * TB_P + p] = (uint8_t)(i * 5 + (p % TB_S) * 40 + p);
        d->label[i] = i % TB_K;
    }
}

// The statistics of TB_STEPS batches.
typedef struct {
    long n, null, flipped;
    double t_sum;
    int t_min, t_max;
} tb_stats;

static tb_stats tb_run(double cond_ratio, int flip) {
    cfg *c = tb_cfg(cond_ratio, flip);
    tr_batch_spec bs;
    ck_assert_msg(tr_batch_spec_from_cfg(c, &bs) == 0, "%s", err_msg());
    cfg_free(c);
    ck_assert_int_eq(bs.iter_interval, TB_I);
    tr_images d;
    tb_images(&d);
    tr_order order, check;
    ck_assert_int_eq(tr_order_init(&order, bs.seed, TB_N), 0);
    ck_assert_int_eq(tr_order_init(&check, bs.seed, TB_N), 0);
    float x[TB_B * TB_P], t[TB_B], plain[TB_P], mirror[TB_P];
    int32_t y[TB_B];
    uint8_t scratch[TB_P], flipped_u8[TB_P];
    tb_stats st = {0, 0, 0, 0.0, TB_I, -1};
    int half = (TB_B + 1) / 2;
    for (long s = 0; s < TB_STEPS; s++) {
        tr_batch_draw(&bs, &d, &order, s, x, t, y, scratch);
        for (int i = 0; i < TB_B; i++) {
            int ti = (int)t[i];
            ck_assert_msg((float)ti == t[i] && ti >= 0 && ti < TB_I, "step %ld member %d: t = %g outside 0..%d", s, i,
                          (double)t[i], TB_I - 1);
            if (i >= half)
                ck_assert_msg(t[i - half] + t[i] == (float)(TB_I - 1), "step %ld: t[%d] + t[%d] = %g, not I-1 = %d", s,
                              i - half, i, (double)(t[i - half] + t[i]), TB_I - 1);
            st.t_sum += ti;
            if (ti < st.t_min) st.t_min = ti;
            if (ti > st.t_max) st.t_max = ti;
            uint32_t idx = tr_order_at(&check, (uint64_t)s * TB_B + (uint64_t)i);
            ck_assert_msg(y[i] == TB_K || y[i] == d.label[idx], "step %ld member %d: label %d, image %u has %d", s, i,
                          y[i], idx, d.label[idx]);
            st.null += y[i] == TB_K;
            // the pixels are the image's, or its mirror image
            tr_to_signed(plain, d.img + (size_t)idx * TB_P, TB_P);
            tr_augment(flipped_u8, d.img + (size_t)idx * TB_P, TB_C, TB_S, TB_S, 1, 0, 0, 0);
            tr_to_signed(mirror, flipped_u8, TB_P);
            int is_plain = memcmp(x + i * TB_P, plain, sizeof plain) == 0,
                is_mirror = memcmp(x + i * TB_P, mirror, sizeof mirror) == 0;
            ck_assert_msg(is_plain != is_mirror, "step %ld member %d: neither image %u nor its mirror", s, i, idx);
            st.flipped += is_mirror;
            st.n++;
        }
    }
    // the batch is a function of (seed, step): step 17 again, after the others
    float x2[TB_B * TB_P], t2[TB_B];
    int32_t y2[TB_B];
    tr_batch_draw(&bs, &d, &order, 17, x, t, y, scratch);
    tr_batch_draw(&bs, &d, &order, 300, x2, t2, y2, scratch);
    tr_batch_draw(&bs, &d, &order, 17, x2, t2, y2, scratch);
    ck_assert(memcmp(x, x2, sizeof x) == 0 && memcmp(t, t2, sizeof t) == 0 && memcmp(y, y2, sizeof y) == 0);
    tr_order_free(&order);
    tr_order_free(&check);
    tr_images_free(&d);
    return st;
}

START_TEST(test_batch_draws) {
    tb_stats st = tb_run(0.9, 1);
    ck_assert_int_eq(st.n, TB_STEPS * TB_B);
    // 2800 draws: rates within ~5 standard deviations of what METHOD.md says
    double null_rate = (double)st.null / st.n, flip_rate = (double)st.flipped / st.n, t_mean = st.t_sum / st.n;
    ck_assert_msg(fabs(null_rate - 0.1) < 0.03, "null-label rate %.4f, expected 1 - cond_ratio = 0.1", null_rate);
    ck_assert_msg(fabs(flip_rate - 0.5) < 0.05, "flip rate %.4f, expected 0.5", flip_rate);
    ck_assert_msg(fabs(t_mean - (TB_I - 1) / 2.0) < 3, "mean t %.2f, expected %.1f", t_mean, (TB_I - 1) / 2.0);
    ck_assert_msg(st.t_min <= 2 && st.t_max >= TB_I - 3, "t spans only %d..%d of 0..%d", st.t_min, st.t_max, TB_I - 1);
}
END_TEST

START_TEST(test_batch_switches) {
    tb_stats st = tb_run(1.0, 0); // keep every label, no flips
    ck_assert_int_eq(st.null, 0);
    ck_assert_int_eq(st.flipped, 0);
    st = tb_run(0.0, 1); // always the null label
    ck_assert_int_eq(st.null, st.n);
    st = tb_run(0.5, 1);
    ck_assert_msg(fabs((double)st.null / st.n - 0.5) < 0.05, "null-label rate %.4f at cond_ratio 0.5",
                  (double)st.null / st.n);
}
END_TEST

Suite *suite_train_batch(void) {
    Suite *s = suite_create("train_batch");
    TCase *tc = tcase_create("train_batch");
    tcase_add_test(tc, test_batch_draws);
    tcase_add_test(tc, test_batch_switches);
    suite_add_tcase(s, tc);
    return s;
}
