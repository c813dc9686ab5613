// tr_diffusion: the denoiser training loop of METHOD.md section 3 (tr.h): antithetic
// timesteps, label dropout, noising, the summed squared error, AdamW with warm-up and clipping,
// EMA; checkpoints, validation loss per timestep bucket and the denoising picture (table grid).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/log.h"
#include "common/nn/optim.h"
#include "common/nn/unet.h"
#include "common/png.h"
#include "common/rng.h"
#include "common/schedule.h"
#include "common/train/tr.h"

#define TR_VAL_BUCKETS 10 // timestep buckets of the validation loss over 0..I-1
#define TR_VAL_IMAGES 256 // validation images (the first ones of --val, else of the training set)
#define TR_GRID_IMAGES 8  // rows of the denoising picture
#define TR_NOISE_VAL (1ull << 63) // RNG_TRAIN_NOISE ids above every step: validation noises
#define TR_NOISE_GRID (1ull << 62)

typedef struct {
    const tr_env *env;
    ops_ctx *ctx;
    int B, I, K, P;
    long steps, ckpt_every, log_every;
    double minutes, ema_rate;
    uint64_t seed;
    tr_batch_spec bs; // the batch draws (B, I, K and seed above are copies)
    optim_adamw_config oc;
    sched sc;
    unet_model *m;
    nn_net *net;
    optim *opt;
    optim_ema *ema;
    float *d_x0, *d_xt, *d_noise, *d_eps, *d_deps, *d_t, *d_loss, *d_backup;
    int32_t *d_y;
    float *h_x, *h_t;
    int32_t *h_y;
    uint8_t *h_u8;
    tr_order order;
    tr_log log;
} tr_diff;

static int tr_diff_config(tr_diff *d, const cfg *root) {
    int64_t l;
    double x;
    ERR_TRY(tr_batch_spec_from_cfg(root, &d->bs));
    d->I = d->bs.iter_interval;
    d->K = d->bs.num_classes;
    d->B = d->bs.batch;
    d->seed = d->bs.seed;
    ERR_TRY(cfg_get_i64(root, "train_diffusion.steps", &l));
    d->steps = (long)l;
    ERR_TRY(cfg_get_i64(root, "train_diffusion.checkpoint_every", &l));
    d->ckpt_every = (long)l;
    ERR_TRY(cfg_get_i64(root, "train_diffusion.log_every", &l));
    d->log_every = (long)l;
    ERR_TRY(cfg_get_float(root, "train_diffusion.minutes", &d->minutes));
    ERR_TRY(cfg_get_float(root, "train_diffusion.ema", &d->ema_rate));
    optim_adamw_config *o = &d->oc;
    *o = optim_adamw_default();
    ERR_TRY(cfg_get_float(root, "train_diffusion.lr", &x));
    o->lr = (float)x;
    ERR_TRY(cfg_get_float(root, "train_diffusion.beta1", &x));
    o->beta1 = (float)x;
    ERR_TRY(cfg_get_float(root, "train_diffusion.beta2", &x));
    o->beta2 = (float)x;
    ERR_TRY(cfg_get_float(root, "train_diffusion.eps", &x));
    o->eps = (float)x;
    ERR_TRY(cfg_get_float(root, "train_diffusion.weight_decay", &x));
    o->weight_decay = (float)x;
    ERR_TRY(cfg_get_i64(root, "train_diffusion.warmup", &l));
    o->warmup = (long)l;
    ERR_TRY(cfg_get_i64(root, "train_diffusion.lr_decay_every", &l));
    o->decay_every = (long)l;
    ERR_TRY(cfg_get_float(root, "train_diffusion.lr_decay_factor", &x));
    o->decay_factor = (float)x;
    ERR_TRY(cfg_get_float(root, "train_diffusion.grad_clip", &x));
    o->clip_norm = (float)x;
    return 0;
}

#define TR_ALLOC(ptr, bytes) ERR_TRY(ops_alloc(d->ctx, (void **)&(ptr), (bytes)))

static int tr_diff_setup(tr_diff *d) {
    const tr_env *env = d->env;
    const cfg *unode = NULL;
    unet_config uc;
    ERR_TRY(tr_diff_config(d, env->root));
    ERR_TRY(sched_from_cfg(&d->sc, env->root));
    ERR_TRY(cfg_subtree(env->root, "unet", &unode));
    ERR_TRY(unet_config_from_cfg(unode, &uc));
    const tr_images *tr = env->train;
    ERR_IF(uc.in_channels != tr->c || uc.image_size != tr->h || uc.image_size != tr->w, ERR_CONFIG,
           "unet.in_channels %d / unet.image_size %d do not match the images of %s (%d x %d x %d)", uc.in_channels,
           uc.image_size, env->out_path, tr->c, tr->h, tr->w);
    ERR_IF(uc.out_ch != uc.in_channels, ERR_CONFIG, "unet.out_ch %d must equal unet.in_channels %d (eps has the image's shape)",
           uc.out_ch, uc.in_channels);
    ERR_IF(d->I > d->sc.T, ERR_CONFIG, "diffusion.iter_interval %d exceeds diffusion.T %d", d->I, d->sc.T);
    d->P = tr->c * tr->h * tr->w;
    ERR_TRY(unet_create(&d->m, d->ctx, &uc, d->B));
    d->net = unet_net(d->m);
    ERR_TRY(optim_adamw_create(&d->opt, d->ctx, d->net->n_params, &d->oc));
    size_t bp = sizeof(float) * (size_t)d->B * d->P;
    TR_ALLOC(d->d_x0, bp);
    TR_ALLOC(d->d_xt, bp);
    TR_ALLOC(d->d_noise, bp);
    TR_ALLOC(d->d_eps, bp);
    TR_ALLOC(d->d_deps, bp);
    TR_ALLOC(d->d_t, sizeof(float) * d->B);
    TR_ALLOC(d->d_y, sizeof(int32_t) * d->B);
    TR_ALLOC(d->d_loss, sizeof(float) * 4);
    TR_ALLOC(d->d_backup, sizeof(float) * d->net->n_params);
    d->h_x = malloc(bp);
    d->h_t = malloc(sizeof(float) * d->B);
    d->h_y = malloc(sizeof(int32_t) * d->B);
    d->h_u8 = malloc((size_t)d->P * 2);
    ERR_IF(!d->h_x || !d->h_t || !d->h_y || !d->h_u8, ERR_NOMEM, "out of memory");
    ERR_TRY(tr_order_init(&d->order, d->seed, (uint32_t)tr->n));
    tr_log_init(&d->log, TR_LOG_WIDTH);
    return 0;
}

static void tr_diff_free(tr_diff *d) {
    float *bufs[] = {d->d_x0, d->d_xt, d->d_noise, d->d_eps, d->d_deps, d->d_t, d->d_loss, d->d_backup, (float *)d->d_y};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) ops_free(d->ctx, bufs[i]);
    optim_ema_destroy(d->ema);
    optim_destroy(d->opt);
    unet_destroy(d->m);
    sched_free(&d->sc);
    free(d->h_x);
    free(d->h_t);
    free(d->h_y);
    free(d->h_u8);
    tr_order_free(&d->order);
    tr_log_free(&d->log);
}

// x_t = sqrt(abar[t_i]) x0 + sqrt(1 - abar[t_i]) n for n images on the device, in one op (one
// launch on CUDA; the same numbers as one axpby per image).
static int tr_diff_noise(tr_diff *d, float *xt, const float *x0, const float *noise, const float *t, int n) {
    float *c = malloc(sizeof(float) * 2 * (size_t)n);
    ERR_IF(!c, ERR_NOMEM, "out of memory for %d noising coefficients", n);
    for (int i = 0; i < n; i++) {
        double ab = d->sc.abar[(int)t[i]];
        c[i] = (float)sqrt(ab);
        c[n + i] = (float)sqrt(1.0 - ab);
    }
    int rc = ops_axpby_rows(d->ctx, xt, c, x0, c + n, noise, n, (size_t)d->P);
    free(c);
    return rc;
}

// One optimiser step `step` (0-based). *loss and *gnorm receive the batch loss and gradient norm.
static int tr_diff_step(tr_diff *d, long step, float *loss, float *gnorm) {
    uint64_t s = (uint64_t)step;
    int B = d->B;
    tr_batch_draw(&d->bs, d->env->train, &d->order, step, d->h_x, d->h_t, d->h_y, d->h_u8);
    ERR_TRY(ops_upload(d->ctx, d->d_x0, d->h_x, sizeof(float) * (size_t)B * d->P));
    ERR_TRY(ops_upload(d->ctx, d->d_t, d->h_t, sizeof(float) * B));
    ERR_TRY(ops_upload(d->ctx, d->d_y, d->h_y, sizeof(int32_t) * B));
    ERR_TRY(ops_randn(d->ctx, d->d_noise, (size_t)B * d->P, rng_stream(d->seed, RNG_TRAIN_NOISE, s, 0, 0), 0));
    ERR_TRY(tr_diff_noise(d, d->d_xt, d->d_x0, d->d_noise, d->h_t, B));
    ERR_TRY(unet_forward(d->m, d->d_eps, d->d_xt, d->d_t, d->d_y, B, 1, rng_stream(d->seed, RNG_DROPOUT, s, 0, 0)));
    ERR_TRY(ops_mse_sum_loss(d->ctx, d->d_loss, d->d_deps, d->d_eps, d->d_noise, B, d->P));
    ERR_TRY(nn_zero_grad(d->net));
    ERR_TRY(unet_backward(d->m, NULL, d->d_deps, B));
    ERR_TRY(optim_step(d->opt, d->net->params, d->net->grads, gnorm));
    ERR_TRY(optim_ema_update(d->ema, d->net->params));
    return ops_download(d->ctx, loss, d->d_loss, sizeof(float));
}

// Swaps the EMA weights into the model (on != 0) or restores the trained ones.
static int tr_diff_use_ema(tr_diff *d, int on) {
    size_t bytes = sizeof(float) * d->net->n_params;
    if (on) {
        ERR_TRY(ops_copy(d->ctx, d->d_backup, d->net->params, bytes));
        return ops_copy(d->ctx, d->net->params, optim_ema_params(d->ema), bytes);
    }
    return ops_copy(d->ctx, d->net->params, d->d_backup, bytes);
}

// The validation images: the --val store, else the training store.
static const tr_images *tr_diff_valset(const tr_diff *d) { return d->env->val ? d->env->val : d->env->train; }

// Mean loss (EMA weights) per timestep bucket over the validation images, into out[TR_VAL_BUCKETS].
static int tr_diff_val_loss(tr_diff *d, float *out) {
    const tr_images *v = tr_diff_valset(d);
    int nv = v->n < TR_VAL_IMAGES ? (int)v->n : TR_VAL_IMAGES, rc = 0;
    ERR_TRY(tr_diff_use_ema(d, 1));
    for (int b = 0; b < TR_VAL_BUCKETS; b++) {
        int t = (int)(((2 * b + 1) * (long)d->I) / (2 * TR_VAL_BUCKETS));
        philox_key kn = rng_stream(d->seed, RNG_TRAIN_NOISE, TR_NOISE_VAL + (uint64_t)b, 0, 0);
        double sum = 0;
        for (int j0 = 0; j0 < nv; j0 += d->B) {
            int n = nv - j0 < d->B ? nv - j0 : d->B;
            for (int i = 0; i < n; i++) {
                tr_to_signed(d->h_x + (size_t)i * d->P, v->img + (size_t)(j0 + i) * d->P, (size_t)d->P);
                d->h_t[i] = (float)t;
                d->h_y[i] = v->label[j0 + i];
            }
            float l;
            ERR_GOTO(rc, ops_upload(d->ctx, d->d_x0, d->h_x, sizeof(float) * (size_t)n * d->P));
            ERR_GOTO(rc, ops_upload(d->ctx, d->d_t, d->h_t, sizeof(float) * n));
            ERR_GOTO(rc, ops_upload(d->ctx, d->d_y, d->h_y, sizeof(int32_t) * n));
            ERR_GOTO(rc, ops_randn(d->ctx, d->d_noise, (size_t)n * d->P, kn, (uint64_t)j0 * d->P));
            ERR_GOTO(rc, tr_diff_noise(d, d->d_xt, d->d_x0, d->d_noise, d->h_t, n));
            ERR_GOTO(rc, unet_forward(d->m, d->d_eps, d->d_xt, d->d_t, d->d_y, n, 0, (philox_key){0, 0, 0, 0}));
            ERR_GOTO(rc, ops_mse_sum_loss(d->ctx, d->d_loss, d->d_deps, d->d_eps, d->d_noise, n, d->P));
            ERR_GOTO(rc, ops_download(d->ctx, &l, d->d_loss, sizeof(float)));
            sum += (double)l * n;
        }
        out[b] = (float)(sum / nv);
    }
fail:
    if (tr_diff_use_ema(d, 0) < 0 && rc >= 0) rc = err_last();
    return rc;
}

static uint8_t tr_to_u8(float x) {
    float v = (x + 1.0f) * 127.5f + 0.5f;
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
}

// The picture: per validation image, the image, then for t = 120, 240, 360 the noised image and
// the one-step estimate x0_hat = (x_t - sqrt(1 - abar) eps) / sqrt(abar) (EMA weights).
// Stored as table `grid` key 0 (the train stage writes it beside the store as STORE.denoise.png).
static int tr_diff_grid(tr_diff *d) {
    static const int levels[] = {120, 240, 360};
    const tr_images *v = tr_diff_valset(d);
    int n = v->n < TR_GRID_IMAGES ? (int)v->n : TR_GRID_IMAGES, nl = 3, cols = 1 + 2 * nl, rc = 0;
    if (n > d->B) n = d->B;
    png_grid_shape g = {n, cols, v->c, v->h, v->w, 2, 255};
    size_t tile = (size_t)d->P, gbytes = (size_t)v->c * png_grid_height(&g) * png_grid_width(&g);
    uint8_t *tiles = malloc(tile * n * cols), *pic = malloc(gbytes);
    const uint8_t **tp = malloc(sizeof *tp * n * cols);
    float *host = malloc(sizeof(float) * tile * n);
    ERR_GOTO_IF(rc, !tiles || !pic || !tp || !host, ERR_NOMEM, "out of memory for the picture");
    for (int i = 0; i < n * cols; i++) tp[i] = tiles + tile * i;
    for (int i = 0; i < n; i++) {
        memcpy(tiles + tile * (i * cols), v->img + tile * i, tile);
        tr_to_signed(d->h_x + tile * i, v->img + tile * i, tile);
        d->h_y[i] = v->label[i];
    }
    ERR_GOTO(rc, tr_diff_use_ema(d, 1));
    ERR_GOTO(rc, ops_upload(d->ctx, d->d_x0, d->h_x, sizeof(float) * tile * n));
    ERR_GOTO(rc, ops_upload(d->ctx, d->d_y, d->h_y, sizeof(int32_t) * n));
    ERR_GOTO(rc, ops_randn(d->ctx, d->d_noise, tile * n, rng_stream(d->seed, RNG_TRAIN_NOISE, TR_NOISE_GRID, 0, 0), 0));
    for (int l = 0; l < nl; l++) {
        int t = levels[l] < d->sc.T ? levels[l] : d->sc.T - 1;
        double ab = d->sc.abar[t];
        for (int i = 0; i < n; i++) d->h_t[i] = (float)t;
        ERR_GOTO(rc, ops_upload(d->ctx, d->d_t, d->h_t, sizeof(float) * n));
        ERR_GOTO(rc, tr_diff_noise(d, d->d_xt, d->d_x0, d->d_noise, d->h_t, n));
        ERR_GOTO(rc, unet_forward(d->m, d->d_eps, d->d_xt, d->d_t, d->d_y, n, 0, (philox_key){0, 0, 0, 0}));
        ERR_GOTO(rc, ops_download(d->ctx, host, d->d_xt, sizeof(float) * tile * n));
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < tile; j++) tiles[tile * (i * cols + 1 + 2 * l) + j] = tr_to_u8(host[tile * i + j]);
        ERR_GOTO(rc, ops_axpby(d->ctx, d->d_deps, (float)(1.0 / sqrt(ab)), d->d_xt, (float)(-sqrt((1.0 - ab) / ab)),
                               d->d_eps, tile * n));
        ERR_GOTO(rc, ops_download(d->ctx, host, d->d_deps, sizeof(float) * tile * n));
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < tile; j++) tiles[tile * (i * cols + 2 + 2 * l) + j] = tr_to_u8(host[tile * i + j]);
    }
    ERR_GOTO(rc, tr_diff_use_ema(d, 0));
    ERR_GOTO(rc, png_grid_compose(pic, &g, tp));
    ts_key k;
    ts_tensor t;
    int64_t shape[3] = {g.c, png_grid_height(&g), png_grid_width(&g)};
    ts_key_u64(&k, 0);
    ERR_GOTO(rc, ts_tensor_init(&t, TS_U8, 3, shape, pic));
    ERR_GOTO(rc, ts_put(d->env->out, "grid", &k, &t, TS_CODEC_ZSTD));
fail:
    free(tiles);
    free(pic);
    free(tp);
    free(host);
    return rc;
}

// One checkpoint: every table and meta `step` in one batch.
static int tr_diff_checkpoint(tr_diff *d, long step, const float *val) {
    ts_store *s = d->env->out;
    size_t n = 0;
    float *st = optim_state(d->opt, &n);
    int rc = 0;
    ERR_TRY(ts_begin_write(s));
    ERR_GOTO(rc, tr_ckpt_put(s, "param", NULL, d->net, NN_KIND_PARAM, d->net->params));
    ERR_GOTO(rc, tr_ckpt_put(s, "ema", NULL, d->net, NN_KIND_PARAM, optim_ema_params(d->ema)));
    ERR_GOTO(rc, tr_ckpt_put(s, "optim", "exp_avg.", d->net, NN_KIND_PARAM, st));
    ERR_GOTO(rc, tr_ckpt_put(s, "optim", "exp_avg_sq.", d->net, NN_KIND_PARAM, st + d->net->n_params));
    ERR_GOTO(rc, tr_log_flush(&d->log, s, "log"));
    if (val) ERR_GOTO(rc, tr_put_vector(s, "val_loss", (uint64_t)step, val, TR_VAL_BUCKETS));
    ERR_GOTO(rc, tr_ckpt_put_meta(s, d->env, "diffusion", step, (int64_t)((uint64_t)step * d->B / d->env->train->n)));
    ERR_GOTO(rc, ts_commit(s));
    return 0;
fail:
    ts_abort(s);
    return rc;
}

// Fresh start (initialisation) or resume (the last checkpoint). *step = steps taken.
static int tr_diff_start(tr_diff *d, long *step) {
    int rc = tr_ckpt_step(d->env, d->steps, step);
    if (rc == 0) {
        ERR_TRY(nn_init_default(d->net, d->seed));
        return optim_ema_create(&d->ema, d->ctx, d->net->params, d->net->n_params, (float)d->ema_rate);
    }
    ERR_TRY(rc);
    size_t n = 0;
    float *state = optim_state(d->opt, &n);
    ERR_TRY(tr_ckpt_get(d->env->out, "param", NULL, d->net, NN_KIND_PARAM, d->net->params));
    ERR_TRY(optim_ema_create(&d->ema, d->ctx, d->net->params, d->net->n_params, (float)d->ema_rate));
    ERR_TRY(tr_ckpt_get(d->env->out, "ema", NULL, d->net, NN_KIND_PARAM, optim_ema_params(d->ema)));
    ERR_TRY(tr_ckpt_get(d->env->out, "optim", "exp_avg.", d->net, NN_KIND_PARAM, state));
    ERR_TRY(tr_ckpt_get(d->env->out, "optim", "exp_avg_sq.", d->net, NN_KIND_PARAM, state + d->net->n_params));
    optim_set_steps(d->opt, *step);
    log_info("%s: resuming at step %ld of %ld", d->env->out_path, *step, d->steps);
    return 0;
}

int tr_diffusion_run(const tr_env *env, tr_result *res) {
    tr_diff d;
    memset(&d, 0, sizeof d);
    memset(res, 0, sizeof *res);
    d.env = env;
    d.ctx = env->ctx;
    int rc = 0;
    long step = 0;
    float val[TR_VAL_BUCKETS];
    tr_meter m = {.out_path = env->out_path, .section = "train_diffusion", .loss_digits = 2, .log = &d.log,
                  .t0 = tr_now()};
    ERR_GOTO(rc, tr_diff_setup(&d));
    ERR_GOTO(rc, tr_diff_start(&d, &step));
    log_info("%s: UNet of %zu parameters, batch %d, t in 0..%d, %ld steps", env->out_path, d.net->n_params, d.B,
             d.I - 1, d.steps);
    m.batch = d.B;
    m.log_every = d.log_every;
    m.minutes = d.minutes;
    tr_meter_begin(&m, step, d.steps);
    while (step < d.steps) {
        float loss = 0, gnorm = 0;
        double lr = optim_lr(d.opt, step);
        int budget = 0;
        ERR_GOTO(rc, tr_diff_step(&d, step, &loss, &gnorm));
        step++;
        ERR_GOTO(rc, tr_meter_step(&m, step, loss, lr, gnorm, &budget));
        int stop = cli_interrupted();
        int due = (d.ckpt_every > 0 && step % d.ckpt_every == 0) || step == d.steps;
        if (due || stop || budget) {
            if (due) ERR_GOTO(rc, tr_diff_val_loss(&d, val));
            ERR_GOTO(rc, tr_diff_checkpoint(&d, step, due ? val : NULL));
            if (due) {
                double mv = 0;
                for (int b = 0; b < TR_VAL_BUCKETS; b++) mv += val[b] / TR_VAL_BUCKETS;
                res->val_metric = mv;
                log_info("step %ld: checkpoint; validation loss %.2f (t buckets: %.1f .. %.1f)", step, mv,
                         (double)val[0], (double)val[TR_VAL_BUCKETS - 1]);
            }
        }
        if (stop) ERR_GOTO(rc, cli_check_interrupt());
        if (budget) break;
    }
    tr_meter_end(&m, step, d.steps, res);
    if (res->complete) {
        ERR_GOTO(rc, ts_begin_write(env->out));
        ERR_GOTO(rc, tr_diff_grid(&d));
        ERR_GOTO(rc, ts_commit(env->out));
    }
fail:
    if (ts_in_write(env->out)) ts_abort(env->out);
    prog_end();
    tr_diff_free(&d);
    return rc;
}
