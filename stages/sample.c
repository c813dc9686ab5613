// sample: the repeat samples of detection (issue 9; METHOD.md 6 and 7). For every image of an
// image store: the discriminator's prediction on the clean image (table `pred`), then for every
// level and repeat the image noised with the repeat's own noise and denoised back with
// classifier-free guidance on that prediction (table `sample`, key (index, level, repeat)).
//
//   sample --images STORE --denoiser CKPT --classifier CKPT --out STORE [--cache DIR]
//          [--limit N] [--shard I/N] [--config FILE] [--set sample.KEY=V] [--force]
//   sample --generate N [--label Y|null] --denoiser CKPT --out STORE      (pictures from noise)
//
// The store is incremental (common/stage.h): its base key covers what determines a record
// (the three input store keys, method, sample_step, guidance, seed, index_quirk); its request
// (levels, repeats, image range) may grow, and a rerun computes only the missing records.
// With --cache DIR the records live in DIR/sample-BASEKEY.store, shared by every samples store
// with the same base key; the samples store then holds only meta (`records` names the entry).
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/diffusion/denoise.h"
#include "common/diffusion/repeats.h"
#include "common/err.h"
#include "common/log.h"
#include "common/png.h"
#include "common/rng.h"
#include "common/samples.h"
#include "common/stage.h"
#include "common/train/ckpt.h"

#define SAMPLE_VERSION 1

static const cli_opt sample_opts[] = {
    {"images", "STORE", 0, "image store to noise and denoise (from ingest)"},
    {"denoiser", "CKPT", 0, "denoiser checkpoint store (train --model diffusion): its EMA weights"},
    {"classifier", "CKPT", 0, "classifier checkpoint store (train --model classifier): the guidance label"},
    {"out", "STORE", 0, "samples store (created; extended when it holds fewer repeats, levels or images)"},
    {"cache", "DIR", 0, "keep the records in a cache entry under DIR shared by every experiment with the same "
                        "denoiser, classifier, images and sampler; the samples store then holds only meta"},
    {"limit", "N", 0, "the first N images only (0 = all)"},
    {"shard", "I/N", 0, "the I-th of N disjoint contiguous parts of the images (join with dstore merge)"},
    {"generate", "N", 0, "instead: N images from pure noise into --out (table generated; picture STORE.grid.png "
                         "beside the store)"},
    {"label", "Y|null", 0, "with --generate: the class to generate, or null (unconditional); default null"},
    {"force", NULL, 0, "replace a store made with other parameters or inputs"},
    {0}};

static const cli_spec sample_spec = {
    "sample", "--images STORE --denoiser CKPT --classifier CKPT --out STORE [options]",
    "Noises every image to each level in sample.timesteps with sample.repeats noises and denoises it back "
    "with classifier-free guidance on the classifier's prediction (sample.method ddim|pndm2|pndm4, "
    "sample.sample_step, sample.guidance). Reruns compute only missing records; SIGINT/SIGTERM commit the "
    "current batch and exit 3.",
    sample_opts, CLI_STD_ALL, 0, 0};

typedef struct {
    const char *method_name;
    sampler_method method;
    int sample_step, repeats, batch, n_levels, levels[SMP_MAX_LEVELS];
    double guidance;
    int64_t seed;
    bool quirk;
} sample_cfg;

// --- configuration ----------------------------------------------------------------------------

static int sample_read_cfg(const cfg *c, sample_cfg *sc) {
    size_t nl = 0;
    ERR_TRY(cfg_get_str(c, "sample.method", &sc->method_name));
    ERR_TRY(sampler_method_from_name(sc->method_name, &sc->method));
    ERR_TRY(cfg_get_int(c, "sample.sample_step", &sc->sample_step));
    ERR_TRY(cfg_get_int(c, "sample.repeats", &sc->repeats));
    ERR_TRY(cfg_get_int(c, "sample.batch", &sc->batch));
    ERR_TRY(cfg_get_float(c, "sample.guidance", &sc->guidance));
    ERR_TRY(cfg_get_i64(c, "sample.seed", &sc->seed));
    ERR_TRY(cfg_get_bool(c, "sample.index_quirk", &sc->quirk));
    ERR_TRY(cfg_get_int_list(c, "sample.timesteps", sc->levels, SMP_MAX_LEVELS, &nl));
    sc->n_levels = (int)nl;
    ERR_IF(sc->repeats < 1, ERR_CONFIG, "sample.repeats = %d: at least 1 repeat is needed", sc->repeats);
    ERR_IF(sc->batch < 1, ERR_CONFIG, "sample.batch = %d: at least 1", sc->batch);
    ERR_IF(sc->sample_step < 1, ERR_CONFIG, "sample.sample_step = %d: at least 1", sc->sample_step);
    ERR_IF(sc->n_levels < 1, ERR_CONFIG, "sample.timesteps is empty");
    for (int i = 0; i < sc->n_levels; i++) {
        ERR_IF(sc->levels[i] < 0, ERR_CONFIG, "sample.timesteps: level %d is negative", sc->levels[i]);
        ERR_IF(i > 0 && sc->levels[i] <= sc->levels[i - 1], ERR_CONFIG,
               "sample.timesteps must be ascending and distinct (%d after %d)", sc->levels[i], sc->levels[i - 1]);
    }
    return 0;
}

// The parameters that determine a record: the sample section without timesteps and repeats
// (batch stays: the blocks of sample_compute are batch-sized), as the config's exact canonical
// text (no round trip through cJSON doubles: seeds above 2^53 stay distinct).
static int sample_params(const cfg *c, char **text) {
    static const char *const drop[] = {"timesteps", "repeats", NULL};
    return cfg_canonical_except(c, "sample", drop, text);
}

static int sample_inputs(const char *images, const char *den, const char *cls, char keys[3][HASH_HEX_LEN + 1],
                         char **text) {
    const char *names[3] = {"images", "denoiser", "classifier"}, *paths[3] = {images, den, cls};
    cJSON *p = cJSON_CreateObject();
    ERR_IF(!p, ERR_NOMEM, "out of memory");
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        if (!paths[i]) continue;
        ERR_GOTO(rc, stage_input_key(paths[i], keys[i]));
        cJSON_AddStringToObject(p, names[i], keys[i]);
    }
    ERR_GOTO(rc, stage_canonical_json(p, text));
fail:
    cJSON_Delete(p);
    return rc;
}

// Number of images of an image store (table image) and their shape (first record).
static int sample_image_count(const char *path, int64_t *n, int *c, int *s) {
    ts_store *st = NULL;
    uint64_t cnt = 0;
    int rc = 0;
    ts_key k;
    ts_record_info info;
    ERR_GOTO(rc, ts_open(&st, path, TS_RDONLY));
    rc = ts_count(st, "image", &cnt);
    ERR_GOTO_IF(rc, rc == ERR_NOTFOUND || (rc == 0 && cnt == 0), ERR_INPUT, "%s: no images (table image is empty)", path);
    ERR_GOTO(rc, rc);
    ts_key_u64(&k, 0);
    ERR_GOTO(rc, ts_get_info(st, "image", &k, &info));
    ERR_GOTO_IF(rc, info.dtype != TS_U8 || info.rank != 3 || info.shape[1] != info.shape[2], ERR_INPUT,
                "%s: image 0 is not a square u8 (C, H, W) image", path);
    *n = (int64_t)cnt;
    *c = (int)info.shape[0];
    *s = (int)info.shape[1];
fail:
    ts_close(st);
    return rc;
}

// Images [b, e) of the store into img ((e - b), c, s, s).
static int sample_load_images(const char *path, int64_t b, int64_t e, size_t per, uint8_t *img) {
    ts_store *st = NULL;
    int rc = 0;
    ERR_GOTO(rc, ts_open(&st, path, TS_RDONLY));
    for (int64_t i = b; i < e; i++) {
        ts_key k;
        ts_tensor t;
        ts_key_u64(&k, (uint64_t)i);
        ERR_GOTO(rc, ts_get_into(st, "image", &k, &t, img + (size_t)(i - b) * per, per));
        ERR_GOTO_IF(rc, t.dtype != TS_U8 || (size_t)ts_tensor_numel(&t) != per, ERR_INPUT,
                    "%s: image %lld has another shape than image 0", path, (long long)i);
    }
fail:
    ts_close(st);
    return rc;
}

// --- the work -----------------------------------------------------------------------------------

typedef struct {
    ts_store *rec;            // where records go
    ckpt_classifier cls;
    ckpt_denoiser den;
    dn_ctx *dn;
    smp_request req;
    int32_t *pred;            // (E - B) the classifier's predictions
    float *logits;            // (SAMPLE_PRED_BLOCK, K)
    size_t per;
    int K;
    uint64_t computed;
} sample_run;

// The classifier's prediction on every clean image without one (table pred), then all of them.
// The classifier runs on fixed blocks of SAMPLE_PRED_BLOCK images of the whole image store
// (whatever the shard, limit, batch or resume point): its float results depend slightly on the
// batch's composition, and a record must not.
#define SAMPLE_PRED_BLOCK 64
static int sample_preds(sample_run *r, const char *images, int64_t count) {
    int64_t B = r->req.begin, E = r->req.end;
    ts_store *im = NULL;
    uint8_t *blk = malloc(r->per * SAMPLE_PRED_BLOCK);
    int rc = 0;
    ERR_GOTO_IF(rc, !blk, ERR_NOMEM, "out of memory");
    ERR_GOTO(rc, ts_open(&im, images, TS_RDONLY));
    for (int64_t lo = B / SAMPLE_PRED_BLOCK * SAMPLE_PRED_BLOCK; lo < E; lo += SAMPLE_PRED_BLOCK) {
        int64_t hi = lo + SAMPLE_PRED_BLOCK < count ? lo + SAMPLE_PRED_BLOCK : count;
        int64_t a = lo > B ? lo : B, b = hi < E ? hi : E;
        int have = 1;
        for (int64_t i = a; i < b && have; i++) {
            ts_key k;
            ts_key_u64(&k, (uint64_t)i);
            ERR_GOTO(rc, have = ts_has(r->rec, "pred", &k));
        }
        if (have) continue;
        for (int64_t i = lo; i < hi; i++) {
            ts_key k;
            ts_tensor t;
            ts_key_u64(&k, (uint64_t)i);
            ERR_GOTO(rc, ts_get_into(im, "image", &k, &t, blk + (size_t)(i - lo) * r->per, r->per));
        }
        ERR_GOTO(rc, ckpt_classifier_run(&r->cls, blk, NULL, (int)(hi - lo), r->logits, NULL));
        ERR_GOTO(rc, ts_begin_write(r->rec));
        for (int64_t i = a; i < b && rc >= 0; i++) {
            const float *l = r->logits + (size_t)(i - lo) * r->K;
            int best = 0;
            for (int k = 1; k < r->K; k++)
                if (l[k] > l[best]) best = k;
            double z = 0;
            for (int k = 0; k < r->K; k++) z += exp((double)l[k] - l[best]);
            float v[2] = {(float)best, (float)(1.0 / z)};
            ts_key k;
            ts_tensor t;
            ts_key_u64(&k, (uint64_t)i);
            ts_tensor_init(&t, TS_F32, 1, (int64_t[]){2}, v);
            rc = ts_put(r->rec, "pred", &k, &t, TS_CODEC_RAW);
        }
        if (rc < 0) {
            ts_abort(r->rec);
            goto fail;
        }
        ERR_GOTO(rc, ts_commit(r->rec));
        ERR_GOTO(rc, cli_check_interrupt());
    }
    for (int64_t i = B; i < E; i++) {
        ts_key k;
        ts_tensor t;
        float v[2];
        ts_key_u64(&k, (uint64_t)i);
        ERR_GOTO(rc, ts_get_into(r->rec, "pred", &k, &t, v, sizeof v));
        r->pred[i - B] = (int32_t)v[0];
    }
fail:
    ts_close(im);
    free(blk);
    return rc;
}

// Progress of repeats_compute: a bar or lines, and SIGINT/SIGTERM after every committed block.
static int sample_progress(void *user, uint64_t done, uint64_t todo, int level, uint64_t computed) {
    (void)user;
    if (done == 0) {
        prog_begin("sample", todo);
        return 0;
    }
    prog_update(done, "level %d, %llu samples", level, (unsigned long long)computed);
    if (done == todo) prog_end();
    return cli_check_interrupt();
}

// --- the end of a run ----------------------------------------------------------------------------

static int sample_summary(const char *status, const char *out, const smp_request *q, uint64_t computed,
                          double seconds) {
    cJSON *x = cJSON_CreateObject();
    ERR_IF(!x, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(x, "out", out);
    cJSON_AddNumberToObject(x, "images", (double)(q->end - q->begin));
    cJSON_AddNumberToObject(x, "levels", q->n_levels);
    cJSON_AddNumberToObject(x, "repeats", q->repeats);
    cJSON_AddNumberToObject(x, "computed", (double)computed);
    cJSON_AddNumberToObject(x, "seconds", seconds);
    int rc = cli_summary(stdout, status, x);
    cJSON_Delete(x);
    return rc;
}

static double sample_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int sample_up_to_date(const char *out, const smp_request *q, double t0) {
    log_info("%s: up to date", out);
    return sample_summary("up to date", out, q, 0, sample_now() - t0);
}

// The compute context of --device and --threads.
static int sample_ctx(const cli_args *a, ops_ctx **ctx) {
    ops_options oo = ops_options_default();
    oo.threads = cli_threads(a);
    return ops_ctx_create_named(ctx, cli_device(a), &oo);
}

// --- pictures from pure noise (--generate) -----------------------------------------------------


// The picture of --generate, beside its store (never inside the store directory).
#define SAMPLE_PICTURE ".grid.png"

// Writes STORE.grid.png from the `generated` records 0..n-1 (10 per row).
static int sample_grid_png(ts_store *st, const char *out, int n, int ch, int size) {
    size_t per = (size_t)ch * size * size;
    png_grid_shape g = {(n + 9) / 10, n < 10 ? n : 10, ch, size, size, 2, 255};
    uint8_t *tiles = malloc(per * (size_t)n), *pic = malloc((size_t)ch * png_grid_height(&g) * png_grid_width(&g));
    const uint8_t **tp = malloc(sizeof(uint8_t *) * (size_t)n);
    float *f = malloc(sizeof(float) * per);
    char *path = NULL;
    int rc = 0;
    ERR_GOTO_IF(rc, !tiles || !pic || !tp || !f, ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        ts_key k;
        ts_tensor t;
        ts_key_u64(&k, (uint64_t)i);
        ERR_GOTO(rc, ts_get_into(st, "generated", &k, &t, f, sizeof(float) * per));
        for (size_t j = 0; j < per; j++) tiles[(size_t)i * per + j] = (uint8_t)lrintf(f[j] * 255.0f);
        tp[i] = tiles + (size_t)i * per;
    }
    ERR_GOTO(rc, png_grid_compose(pic, &g, tp));
    ERR_GOTO(rc, stage_side_path(out, SAMPLE_PICTURE, &path));
    ERR_GOTO(rc, png_write(path, pic, ch, png_grid_height(&g), png_grid_width(&g)));
    log_info("%s: picture %s", out, path);
fail:
    free(tiles);
    free(pic);
    free(tp);
    free(f);
    free(path);
    return rc;
}

static int sample_generate(const cli_args *a, const cfg *c) {
    const char *den = cli_get(a, "denoiser"), *out = cli_get(a, "out"), *lab = cli_get(a, "label");
    ERR_IF(!den || !out, ERR_USAGE, "--generate needs --denoiser and --out");
    long n = 0;
    ERR_TRY(cli_get_int(a, "generate", 0, &n));
    ERR_IF(n < 1 || n > 100000, ERR_USAGE, "--generate %ld: between 1 and 100000 images", n);
    sample_cfg sc;
    ERR_TRY(sample_read_cfg(c, &sc));
    char keys[3][HASH_HEX_LEN + 1];
    char *params = NULL, *inputs = NULL, *ptext = NULL;
    ts_store *st = NULL;
    ops_ctx *ctx = NULL;
    ckpt_denoiser d;
    memset(&d, 0, sizeof d);
    dn_ctx *dn = NULL;
    float *buf = NULL;
    int32_t *labels = NULL;
    int rc = 0;
    double t0 = sample_now();
    ERR_GOTO(rc, sample_params(c, &params));
    ERR_GOTO(rc, sample_inputs(NULL, den, NULL, keys, &inputs));
    cJSON *pj = cJSON_CreateObject();
    ERR_GOTO_IF(rc, !pj, ERR_NOMEM, "out of memory");
    cJSON_AddNumberToObject(pj, "generate", (double)n);
    cJSON_AddStringToObject(pj, "label", lab ? lab : "null");
    if (cJSON_AddRawToObject(pj, "sample", params))
        rc = stage_canonical_json(pj, &ptext);
    else
        rc = err_set(ERR_NOMEM, "out of memory");
    cJSON_Delete(pj);
    ERR_GOTO(rc, rc);
    stage_id id = {"sample-generate", SAMPLE_VERSION, ptext, inputs, NULL};
    stage_state state;
    smp_request q = {.n_levels = 0, .repeats = 1, .begin = 0, .end = n, .shard_n = 1};
    ERR_GOTO(rc, stage_probe(out, &id, cli_has(a, "force"), &state));
    if (state == STAGE_UP_TO_DATE) {
        rc = sample_up_to_date(out, &q, t0);
        goto fail;
    }
    ERR_GOTO(rc, sample_ctx(a, &ctx));
    ERR_GOTO(rc, ckpt_denoiser_open(&d, den, ctx, 2 * sc.batch));
    int K = d.cfg.num_classes, y = K, ch = d.cfg.in_channels, size = d.cfg.image_size;
    if (d.iter_interval < d.sch.T - d.sch.T / sc.sample_step)
        log_warn("%s was trained on t < %d only (diffusion.iter_interval): pictures from pure noise start at t = %d "
                 "and will not look like its data", den, d.iter_interval, d.sch.T - d.sch.T / sc.sample_step);
    if (lab && strcmp(lab, "null") != 0) {
        char *e = NULL;
        long v = strtol(lab, &e, 10);
        ERR_GOTO_IF(rc, e == lab || *e || v < 0 || v >= K, ERR_USAGE, "--label '%s': a class 0..%d or null", lab, K - 1);
        y = (int)v;
    }
    dn_params dp = {sc.method, sc.sample_step, sc.quirk, (float)sc.guidance, (uint64_t)sc.seed, rng_id_str("generate")};
    ERR_GOTO(rc, dn_create(&dn, ctx, d.model, &d.sch, &dp, sc.batch));
    size_t per = (size_t)ch * size * size;
    buf = malloc(sizeof(float) * per * (size_t)sc.batch);
    labels = malloc(sizeof(int32_t) * (size_t)sc.batch);
    ERR_GOTO_IF(rc, !buf || !labels, ERR_NOMEM, "out of memory");
    for (int i = 0; i < sc.batch; i++) labels[i] = y;
    ERR_GOTO(rc, stage_open_output(&st, out, &id, cli_has(a, "force"), &state));
    if (state == STAGE_FRESH) ERR_GOTO(rc, stage_side_remove(out, SAMPLE_PICTURE)); // an older run's picture
    prog_begin("generate", (uint64_t)n);
    uint64_t computed = 0;
    for (long i0 = 0; i0 < n; i0 += sc.batch) {
        int nb = (int)(n - i0 < sc.batch ? n - i0 : sc.batch);
        ts_key k;
        ts_key_u64(&k, (uint64_t)(i0 + nb - 1));
        int h = ts_has(st, "generated", &k);
        ERR_GOTO(rc, h);
        if (h) continue;
        ERR_GOTO(rc, dn_generate(dn, labels, (uint32_t)i0, nb, buf));
        ERR_GOTO(rc, ts_begin_write(st));
        for (int i = 0; i < nb && rc >= 0; i++) {
            ts_tensor t;
            ts_key_u64(&k, (uint64_t)(i0 + i));
            ts_tensor_init(&t, TS_F32, 3, (int64_t[]){ch, size, size}, buf + (size_t)i * per);
            rc = ts_put(st, "generated", &k, &t, TS_CODEC_SHUFFLE_ZSTD);
        }
        if (rc < 0) {
            ts_abort(st);
            goto fail;
        }
        ERR_GOTO(rc, ts_commit(st));
        computed += (uint64_t)nb;
        prog_update((uint64_t)(i0 + nb), NULL);
        ERR_GOTO(rc, cli_check_interrupt());
    }
    prog_end();
    ERR_GOTO(rc, sample_grid_png(st, out, (int)n, ch, size));
    ERR_GOTO(rc, stage_mark_complete(st));
    ERR_GOTO(rc, sample_summary("ok", out, &q, computed, sample_now() - t0));
fail:
    ts_close(st);
    dn_destroy(dn);
    ckpt_denoiser_close(&d);
    ops_ctx_destroy(ctx);
    free(buf);
    free(labels);
    free(params);
    free(inputs);
    free(ptext);
    return rc;
}

static int sample_main(const cli_args *a, const cfg *c) {
    const char *images = cli_get(a, "images"), *den = cli_get(a, "denoiser"), *cls = cli_get(a, "classifier"),
               *out = cli_get(a, "out"), *cache = cli_get(a, "cache");
    ERR_IF(!images || !den || !cls || !out, ERR_USAGE,
           "--images, --denoiser, --classifier and --out are required (see 'sample --help')");
    sample_cfg sc;
    ERR_TRY(sample_read_cfg(c, &sc));
    long limit = 0;
    int shard_i = 0, shard_n = 1;
    ERR_TRY(cli_get_int(a, "limit", 0, &limit));
    ERR_IF(limit < 0, ERR_USAGE, "--limit %ld: must be >= 0", limit);
    if (cli_get(a, "shard")) ERR_TRY(smp_shard_parse(cli_get(a, "shard"), &shard_i, &shard_n));

    char keys[3][HASH_HEX_LEN + 1], base_key[HASH_HEX_LEN + 1];
    char *params = NULL, *inputs = NULL, *req_text = NULL;
    ts_store *st = NULL, *rec = NULL;
    uint8_t *img = NULL;
    int32_t *pred = NULL;
    float *outbuf = NULL, *logits = NULL;
    sample_run r;
    memset(&r, 0, sizeof r);
    ops_ctx *ctx = NULL;
    int rc = 0, ch = 0, size = 0;
    int64_t count = 0;
    double t0 = sample_now();
    ERR_GOTO(rc, sample_params(c, &params));
    ERR_GOTO(rc, sample_inputs(images, den, cls, keys, &inputs));
    ERR_GOTO(rc, sample_image_count(images, &count, &ch, &size));
    int64_t n_img = limit > 0 && limit < count ? limit : count;
    smp_request q = {.n_levels = sc.n_levels, .repeats = sc.repeats, .shard_i = shard_i, .shard_n = shard_n};
    memcpy(q.levels, sc.levels, sizeof q.levels);
    smp_shard_range(n_img, shard_i, shard_n, &q.begin, &q.end);
    ERR_GOTO(rc, smp_request_text(&q, &req_text));
    stage_id id = {"sample", SAMPLE_VERSION, params, inputs, req_text};
    ERR_GOTO(rc, stage_key(&id, base_key));
    stage_state state;
    ERR_GOTO(rc, stage_probe(out, &id, cli_has(a, "force"), &state));
    if (state == STAGE_UP_TO_DATE && smp_entry_lost(out)) {
        log_warn("%s: its cache entry is gone: computing the records again", out);
        state = STAGE_RESUME;
    }
    if (state == STAGE_UP_TO_DATE) {
        rc = sample_up_to_date(out, &q, t0);
        goto fail;
    }

    // inputs, checked before the output store is touched
    ERR_GOTO(rc, sample_ctx(a, &ctx));
    ERR_GOTO(rc, ckpt_classifier_open(&r.cls, cls, ctx, ch, size, SAMPLE_PRED_BLOCK));
    ERR_GOTO(rc, ckpt_denoiser_open(&r.den, den, ctx, 2 * sc.batch));
    const unet_config *uc = &r.den.cfg;
    r.K = ckpt_classifier_classes(&r.cls);
    ERR_GOTO_IF(rc, uc->num_classes != r.K, ERR_INPUT,
                "%s has %d classes but the denoiser %s was trained with %d: they must be of one dataset", cls, r.K,
                den, uc->num_classes);
    ERR_GOTO_IF(rc, uc->in_channels != ch || uc->image_size != size, ERR_INPUT,
                "%s: images %d x %d x %d do not fit the denoiser %s (%d x %d x %d)", images, ch, size, size, den,
                uc->in_channels, uc->image_size, uc->image_size);
    for (int i = 0; i < sc.n_levels; i++)
        ERR_GOTO_IF(rc, sc.levels[i] >= r.den.sch.T, ERR_CONFIG,
                    "sample.timesteps: level %d is not below the denoiser's T = %d (%s)", sc.levels[i], r.den.sch.T, den);
    ERR_GOTO_IF(rc, sc.sample_step > r.den.sch.T, ERR_CONFIG, "sample.sample_step %d exceeds T = %d", sc.sample_step,
                r.den.sch.T);
    dn_params dp = {sc.method, sc.sample_step, sc.quirk, (float)sc.guidance, (uint64_t)sc.seed, rng_id_str(keys[0])};
    ERR_GOTO(rc, dn_create(&r.dn, ctx, r.den.model, &r.den.sch, &dp, sc.batch));
    r.per = (size_t)ch * size * size;
    int64_t nq = q.end - q.begin;
    img = malloc(r.per * (size_t)(nq > 0 ? nq : 1));
    pred = malloc(sizeof(int32_t) * (size_t)(nq > 0 ? nq : 1));
    outbuf = malloc(sizeof(float) * r.per * (size_t)sc.batch);
    logits = malloc(sizeof(float) * (size_t)r.K * SAMPLE_PRED_BLOCK);
    ERR_GOTO_IF(rc, !img || !pred || !outbuf || !logits, ERR_NOMEM, "out of memory for %lld images", (long long)nq);
    ERR_GOTO(rc, sample_load_images(images, q.begin, q.end, r.per, img));

    ERR_GOTO(rc, stage_open_output(&st, out, &id, cli_has(a, "force"), &state));
    ERR_GOTO(rc, ts_begin_write(st));
    char abs_images[PATH_MAX];
    ERR_GOTO_IF(rc, !realpath(images, abs_images), ERR_IO, "%s: cannot resolve the path", images);
    ERR_GOTO(rc, ts_meta_put(st, "images", abs_images));
    ERR_GOTO(rc, ts_meta_put(st, "images_key", keys[0]));
    ERR_GOTO(rc, ts_meta_put(st, "denoiser_key", keys[1]));
    ERR_GOTO(rc, ts_meta_put(st, "classifier_key", keys[2]));
    ERR_GOTO(rc, ts_meta_put(st, "cache_key", base_key));
    ERR_GOTO(rc, ts_commit(st));
    ERR_GOTO(rc, smp_records_open(st, out, cache, &id, base_key, &rec));
    ts_set_zstd_level(rec, 1);
    log_info("%s: %s, %lld images x %d levels x %d repeats (%s %d steps, guidance %g, %s)", out,
             stage_state_name(state), (long long)nq, q.n_levels, q.repeats, sc.method_name, sc.sample_step,
             sc.guidance, ops_device_name(ops_ctx_device(ctx)));
    r.rec = rec;
    r.req = q;
    r.pred = pred;
    r.logits = logits;
    ERR_GOTO(rc, sample_preds(&r, images, count));
    repeats_plan plan = {rec, r.dn, q, sc.batch, ch, size, img, pred, outbuf, sample_progress, NULL};
    ERR_GOTO(rc, repeats_compute(&plan, &r.computed));
    ERR_GOTO(rc, stage_mark_complete(st));
    log_info("%s: done, %llu samples computed", out, (unsigned long long)r.computed);
    ERR_GOTO(rc, sample_summary("ok", out, &q, r.computed, sample_now() - t0));
fail:
    prog_end(); // a no-op unless the work stopped mid-way
    if (rc == ERR_INTERRUPTED)
        log_warn("%s: interrupted after %llu samples; rerun the same command to continue", out,
                 (unsigned long long)r.computed);
    if (rec && rec != st) ts_close(rec);
    ts_close(st);
    dn_destroy(r.dn);
    ckpt_denoiser_close(&r.den);
    ckpt_classifier_close(&r.cls);
    ops_ctx_destroy(ctx);
    free(img);
    free(pred);
    free(outbuf);
    free(logits);
    free(params);
    free(inputs);
    free(req_text);
    return rc;
}

int main(int argc, char **argv) {
    cli_args *a = NULL;
    cfg *c = NULL;
    int rc = cli_parse(&a, &sample_spec, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, &sample_spec);
        cli_args_free(a);
        return 0;
    }
    if (rc < 0) goto fail;
    ERR_GOTO(rc, cli_load_config(a, &c));
    ERR_GOTO(rc, cli_install_interrupt());
    if (cli_get(a, "generate"))
        rc = sample_generate(a, c);
    else
        rc = sample_main(a, c);
fail:
    cfg_free(c);
    cli_args_free(a);
    return rc < 0 ? cli_fail(rc) : 0;
}
