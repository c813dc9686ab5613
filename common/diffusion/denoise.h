// denoise: the repeat samples of detection (METHOD.md 7 steps 2-3): noise a clean image to
// level t with the repeat's own noise, denoise it back with classifier-free guidance on the
// discriminator's prediction, and map it to [0, 1]. Built on the sampler (sampler.h) and the
// UNet (common/nn/unet.h); every buffer is allocated by dn_create, none while denoising.
//
// Noise addressing (frozen: it is what makes repeat samples cacheable and extendable): the noise
// of (image index, repeat) of an input set is normals 0..C*S*S-1 of the Philox stream
// rng_stream(seed, RNG_NOISE_SAMPLE, set_id, index, repeat), set_id = rng_id_str(input image
// store key), drawn by ops_randn (the same numbers on every backend), and the same at every
// level.
#ifndef DIFFOOD_DENOISE_H
#define DIFFOOD_DENOISE_H

#include <stdint.h>

#include "common/diffusion/sampler.h"
#include "common/nn/unet.h"

// One repeat sample to make: image `img` (C, S, S) u8 (host), its index in the input set, the
// repeat, and the guidance label (the discriminator's prediction, 0..K-1).
typedef struct {
    const uint8_t *img;
    uint32_t index, repeat;
    int32_t label;
} dn_job;

typedef struct {
    sampler_method method;
    int sample_step;
    int index_quirk;
    float guidance;   // beta: e = (1 + beta) eps(x, t, y) - beta eps(x, t, K)
    uint64_t seed;    // sample.seed
    uint64_t set_id;  // rng_id_str(input image store key)
} dn_params;

typedef struct dn_ctx dn_ctx;

// A denoiser for at most max_n jobs per call on the UNet `unet` (built for at least 2 * max_n
// images: both guidance branches go through one UNet call) with schedule `sch` (both borrowed).
// ERR_USAGE (unet too small, max_n < 1), ERR_CONFIG (sampler), ERR_NOMEM, device errors.
int dn_create(dn_ctx **out, ops_ctx *ctx, unet_model *unet, const sched *sch, const dn_params *p, int max_n);
void dn_destroy(dn_ctx *d);
// The repeat samples of n jobs at `level` (0..T-1; 0 takes no denoising step) into out01 (n, C,
// S, S) host floats in [0, 1]. ERR_USAGE for n outside 1..max_n or a level outside 0..T-1;
// ERR_INPUT for a label outside 0..K-1; op errors.
int dn_run(dn_ctx *d, const dn_job *jobs, int n, int level, float *out01);
// Network evaluations of one job at `level` (progress, benchmarks).
int dn_evals(const dn_ctx *d, int level);
// The noise of (index, repeat) into host out (per floats), exactly as dn_run draws it (tests).
void dn_noise_host(const dn_params *p, uint32_t index, uint32_t repeat, float *out, size_t per);

// Pure generation (`sample --generate`): n images from pure noise (stream (seed,
// RNG_NOISE_SAMPLE, set_id, i, 0) for image `first + i`), denoised from T - skip down with
// guidance on labels[i] (the null label K for unconditional), into out01 (n, C, S, S) host.
int dn_generate(dn_ctx *d, const int32_t *labels, uint32_t first, int n, float *out01);

#endif
