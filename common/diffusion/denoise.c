// denoise: noised-and-denoised repeat samples with classifier-free guidance (denoise.h).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/diffusion/denoise.h"
#include "common/err.h"
#include "common/rng.h"

struct dn_ctx {
    ops_ctx *ctx;
    unet_model *unet;
    const sched *sch;
    dn_params p;
    sampler *smp;
    int max_n, K;
    size_t per;       // C * S * S
    float *d_x;       // (max_n, per) the images being denoised
    float *d_x2;      // (2 max_n, per) UNet input: both guidance branches
    float *d_e2;      // (2 max_n, per) UNet output
    float *d_noise;   // (max_n, per)
    float *d_t2;      // (2 max_n) time values
    int32_t *d_y2;    // (2 max_n) labels, then the null label
    float *h_t2;      // host staging
    int32_t *h_y2;
    float *h_x;       // (max_n, per)
    int n;            // jobs of the running call
};

// --- the guided noise prediction (the sampler's callback) -------------------------------------

static int dn_eps(void *user, float *eps, const float *x, float t, int n) {
    dn_ctx *d = user;
    size_t half = (size_t)n * d->per;
    ERR_TRY(ops_copy(d->ctx, d->d_x2, x, sizeof(float) * half));
    ERR_TRY(ops_copy(d->ctx, d->d_x2 + half, x, sizeof(float) * half));
    for (int i = 0; i < 2 * n; i++) d->h_t2[i] = t;
    ERR_TRY(ops_upload(d->ctx, d->d_t2, d->h_t2, sizeof(float) * 2 * (size_t)n));
    philox_key none;
    memset(&none, 0, sizeof none);
    ERR_TRY(unet_forward(d->unet, d->d_e2, d->d_x2, d->d_t2, d->d_y2, 2 * n, 0, none));
    return sampler_guide(d->ctx, eps, d->d_e2, d->d_e2 + half, half, d->p.guidance);
}

// --- lifetime ---------------------------------------------------------------------------------

int dn_create(dn_ctx **out, ops_ctx *ctx, unet_model *unet, const sched *sch, const dn_params *p, int max_n) {
    const unet_config *uc = unet_cfg(unet);
    ERR_IF(max_n < 1, ERR_USAGE, "dn_create: max_n %d < 1", max_n);
    dn_ctx *d = calloc(1, sizeof *d);
    ERR_IF(!d, ERR_NOMEM, "out of memory");
    int rc = 0;
    d->ctx = ctx;
    d->unet = unet;
    d->sch = sch;
    d->p = *p;
    d->max_n = max_n;
    d->K = uc->num_classes;
    d->per = (size_t)uc->in_channels * uc->image_size * uc->image_size;
    size_t f = sizeof(float) * d->per;
    ERR_GOTO(rc, sampler_create(&d->smp, ctx, sch, p->method, p->sample_step, p->index_quirk, max_n, d->per));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&d->d_x, f * max_n));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&d->d_x2, f * 2 * max_n));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&d->d_e2, f * 2 * max_n));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&d->d_noise, f * max_n));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&d->d_t2, sizeof(float) * 2 * max_n));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&d->d_y2, sizeof(int32_t) * 2 * max_n));
    d->h_t2 = malloc(sizeof(float) * 2 * max_n);
    d->h_y2 = malloc(sizeof(int32_t) * 2 * max_n);
    d->h_x = malloc(f * max_n);
    ERR_GOTO_IF(rc, !d->h_t2 || !d->h_y2 || !d->h_x, ERR_NOMEM, "out of memory");
    *out = d;
    return 0;
fail:
    dn_destroy(d);
    return rc;
}

void dn_destroy(dn_ctx *d) {
    if (!d) return;
    float *dev[] = {d->d_x, d->d_x2, d->d_e2, d->d_noise, d->d_t2};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i]) ops_free(d->ctx, dev[i]);
    if (d->d_y2) ops_free(d->ctx, d->d_y2);
    sampler_destroy(d->smp);
    free(d->h_t2);
    free(d->h_y2);
    free(d->h_x);
    free(d);
}

int dn_evals(const dn_ctx *d, int level) { return level > 0 ? sampler_evals(d->smp, level - 1, -1) : 0; }

static philox_key dn_key(const dn_params *p, uint32_t index, uint32_t repeat) {
    return rng_stream(p->seed, RNG_NOISE_SAMPLE, p->set_id, index, repeat);
}

void dn_noise_host(const dn_params *p, uint32_t index, uint32_t repeat, float *out, size_t per) {
    rng_fill_normal(dn_key(p, index, repeat), 0, out, per);
}

// --- the samples ------------------------------------------------------------------------------

// Labels of both guidance halves, then x (device) back to [0, 1] on the host.
static int dn_labels(dn_ctx *d, const int32_t *labels, int n) {
    for (int i = 0; i < n; i++) {
        ERR_IF(labels[i] < 0 || labels[i] > d->K, ERR_INPUT, "guidance label %d outside 0..%d", labels[i], d->K);
        d->h_y2[i] = labels[i];
        d->h_y2[n + i] = d->K;
    }
    return ops_upload(d->ctx, d->d_y2, d->h_y2, sizeof(int32_t) * 2 * (size_t)n);
}

static int dn_finish(dn_ctx *d, int n, float *out01) {
    size_t m = (size_t)n * d->per;
    ERR_TRY(ops_download(d->ctx, out01, d->d_x, sizeof(float) * m));
    for (size_t i = 0; i < m; i++) {
        float v = out01[i] * 0.5f + 0.5f;
        out01[i] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    }
    return 0;
}

int dn_run(dn_ctx *d, const dn_job *jobs, int n, int level, float *out01) {
    ERR_IF(n < 1 || n > d->max_n, ERR_USAGE, "dn_run: %d jobs (1..%d)", n, d->max_n);
    ERR_IF(level < 0 || level >= d->sch->T, ERR_USAGE, "dn_run: level %d outside 0..%d", level, d->sch->T - 1);
    int32_t lab[n];
    for (int i = 0; i < n; i++) {
        ERR_IF(jobs[i].label < 0 || jobs[i].label >= d->K, ERR_INPUT, "guidance label %d of image %u outside 0..%d",
               jobs[i].label, jobs[i].index, d->K - 1);
        lab[i] = jobs[i].label;
    }
    ERR_TRY(dn_labels(d, lab, n));
    // x0 = 2 (v / 255) - 1 in float32, as the reference's ToTensor then 2x - 1
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < d->per; j++) d->h_x[(size_t)i * d->per + j] = (float)jobs[i].img[j] / 255.0f * 2.0f - 1.0f;
    size_t m = (size_t)n * d->per;
    ERR_TRY(ops_upload(d->ctx, d->d_x, d->h_x, sizeof(float) * m));
    for (int i = 0; i < n; i++)
        ERR_TRY(ops_randn(d->ctx, d->d_noise + (size_t)i * d->per, d->per, dn_key(&d->p, jobs[i].index, jobs[i].repeat), 0));
    ERR_TRY(sampler_noise_to(d->ctx, d->sch, d->d_x, d->d_x, d->d_noise, m, level));
    if (level > 0) ERR_TRY(sampler_run(d->smp, d->d_x, n, level - 1, -1, dn_eps, d));
    return dn_finish(d, n, out01);
}

int dn_generate(dn_ctx *d, const int32_t *labels, uint32_t first, int n, float *out01) {
    ERR_IF(n < 1 || n > d->max_n, ERR_USAGE, "dn_generate: %d images (1..%d)", n, d->max_n);
    ERR_TRY(dn_labels(d, labels, n));
    for (int i = 0; i < n; i++)
        ERR_TRY(ops_randn(d->ctx, d->d_x + (size_t)i * d->per, d->per, dn_key(&d->p, first + (uint32_t)i, 0), 0));
    int skip = d->sch->T / d->p.sample_step;
    ERR_TRY(sampler_run(d->smp, d->d_x, n, d->sch->T - skip, -1, dn_eps, d));
    return dn_finish(d, n, out01);
}
