// tr_batch: the random draws of one denoiser training batch (METHOD.md 3; tr.h): data order,
// flips, label dropout and antithetic timesteps, as a pure function of (seed, step).
#include "common/cfg.h"
#include "common/err.h"
#include "common/rng.h"
#include "common/train/tr.h"

int tr_batch_spec_from_cfg(const struct cfg *root, tr_batch_spec *b) {
    int64_t l;
    bool flip;
    ERR_TRY(cfg_get_int(root, "train_diffusion.batch", &b->batch));
    ERR_TRY(cfg_get_int(root, "diffusion.iter_interval", &b->iter_interval));
    ERR_TRY(cfg_get_int(root, "unet.num_classes", &b->num_classes));
    ERR_TRY(cfg_get_float(root, "diffusion.cond_ratio", &b->cond_ratio));
    ERR_TRY(cfg_get_bool(root, "train_diffusion.random_flip", &flip));
    b->flip = flip;
    ERR_TRY(cfg_get_i64(root, "train_diffusion.seed", &l));
    b->seed = (uint64_t)l;
    ERR_IF(b->batch < 1 || b->iter_interval < 1 || b->num_classes < 1, ERR_CONFIG,
           "train_diffusion.batch %d, diffusion.iter_interval %d, unet.num_classes %d: each must be >= 1", b->batch,
           b->iter_interval, b->num_classes);
    return 0;
}

void tr_batch_draw(const tr_batch_spec *b, const tr_images *tr, tr_order *order, long step, float *x, float *t,
                   int32_t *y, uint8_t *scratch) {
    uint64_t s = (uint64_t)step;
    size_t P = (size_t)tr->c * tr->h * tr->w;
    philox_key kf = rng_stream(b->seed, RNG_FLIP, s, 0, 0), kt = rng_stream(b->seed, RNG_TRAIN_T, s, 0, 0),
               kl = rng_stream(b->seed, RNG_LABEL_DROP, s, 0, 0);
    int B = b->batch, half = (B + 1) / 2;
    for (int i = 0; i < B; i++) {
        uint32_t idx = tr_order_at(order, s * (uint64_t)B + (uint64_t)i);
        const uint8_t *src = tr->img + (size_t)idx * P;
        if (b->flip && rng_uniform(kf, (uint64_t)i) < 0.5) {
            tr_augment(scratch, src, tr->c, tr->h, tr->w, 1, 0, 0, 0);
            src = scratch;
        }
        tr_to_signed(x + (size_t)i * P, src, P);
        // the label is kept with probability cond_ratio, else the null label K
        y[i] = rng_uniform(kl, (uint64_t)i) < 1.0 - b->cond_ratio ? b->num_classes : tr->label[idx];
    }
    // antithetic: ceil(B/2) draws t ~ U{0..I-1}, then I-1-t for the rest
    for (int i = 0; i < half; i++) t[i] = (float)rng_randint(kt, (uint64_t)i, (uint32_t)b->iter_interval);
    for (int i = half; i < B; i++) t[i] = (float)(b->iter_interval - 1) - t[i - half];
}
