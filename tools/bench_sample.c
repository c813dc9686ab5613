// bench-sample: throughput of detection sampling (METHOD.md 6-7): every test image is noised to
// each level of sample.timesteps with each of sample.repeats noises and denoised with the
// configured sampler (50-step DDIM by default) under classifier-free guidance, the two branches
// in ONE UNet call of 2n images (labels y, then the null label K). Optionally beside PyTorch
// doing the same loop with the same shapes, batching and thread count
// (tools/torchref/bench_sample_torch.py, with --compare). The UNet has random weights (nn_init_default):
// only the time matters. Not a test.
//
//   bench-sample --config fmnist --images 100 --batch 50 --threads 2 --compare
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/diffusion/sampler.h"
#include "common/err.h"
#include "common/nn/unet.h"
#include "common/schedule.h"
#include "common/threads.h"

static const cli_opt opts[] = {
    {"images", "N", 0, "test images to process (default 100)"},
    {"batch", "B", 0, "images per UNet call before the guidance doubling (default 50)"},
    {"compare", NULL, 0, "also run tools/torchref/bench_sample_torch.py (PyTorch) with the same loop and threads"},
    {"python", "PATH", 0, "Python with torch for --compare (default $DIFFOOD_PYTHON or /usr/bin/python3)"},
    {NULL, NULL, 0, NULL}};
static const cli_spec spec = {"bench-sample", "[options]",
                              "Measures detection sampling throughput (test images/s through every level and "
                              "repeat of section `sample`) of the configuration (default: config fmnist).",
                              opts, CLI_STD_CONFIG | CLI_STD_THREADS | CLI_STD_DEVICE, 0, 0};

#define BS_MAX_LEVELS 32

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// --- the guided network --------------------------------------------------------------------------

typedef struct {
    ops_ctx *ctx;
    unet_model *m;
    size_t per;
    int batch;
    float w;
    float *xx, *tt, *e2; // (2 batch, per), (2 batch), (2 batch, per)
    int32_t *lab;        // (2 batch): y then K
    long evals;
} bs_net;

// The sampler callback: one UNet call on [x; x] with labels [y; K], then guidance.
static int bs_eps(void *user, float *eps, const float *x, float t, int n) {
    bs_net *g = user;
    size_t cnt = (size_t)n * g->per;
    ERR_TRY(ops_copy(g->ctx, g->xx, x, cnt * sizeof(float)));
    ERR_TRY(ops_copy(g->ctx, g->xx + cnt, x, cnt * sizeof(float)));
    ERR_TRY(ops_fill(g->ctx, g->tt, t, (size_t)2 * n));
    // labels [y_0..y_{n-1}, K, ..., K] (2n int32 uploaded per call: a short last batch has its own
    // layout, and the upload is negligible beside the UNet)
    int32_t hl[2 * 4096];
    ERR_IF(2 * n > (int)(sizeof hl / sizeof hl[0]), ERR_USAGE, "batch %d too large", n);
    const unet_config *c = unet_cfg(g->m);
    for (int i = 0; i < n; i++) {
        hl[i] = i % c->num_classes;
        hl[n + i] = c->num_classes;
    }
    ERR_TRY(ops_upload(g->ctx, g->lab, hl, (size_t)2 * n * sizeof(int32_t)));
    philox_key k0 = {0, 0, 0, 0};
    ERR_TRY(unet_forward(g->m, g->e2, g->xx, g->tt, g->lab, 2 * n, 0, k0));
    g->evals++;
    return sampler_guide(g->ctx, eps, g->e2, g->e2 + cnt, cnt, g->w);
}

// --- the sampling loop ---------------------------------------------------------------------------

typedef struct {
    int images, batch, repeats, n_levels, sample_step, quirk;
    int levels[BS_MAX_LEVELS];
    double guidance;
    sampler_method method;
} bs_plan;

static int bs_plan_from_cfg(const cfg *c, bs_plan *p) {
    const char *m = NULL;
    size_t nl = 0;
    bool q = true;
    ERR_TRY(cfg_get_str(c, "sample.method", &m));
    ERR_TRY(sampler_method_from_name(m, &p->method));
    ERR_TRY(cfg_get_int(c, "sample.sample_step", &p->sample_step));
    ERR_TRY(cfg_get_float(c, "sample.guidance", &p->guidance));
    ERR_TRY(cfg_get_int(c, "sample.repeats", &p->repeats));
    ERR_TRY(cfg_get_bool(c, "sample.index_quirk", &q));
    ERR_TRY(cfg_get_int_list(c, "sample.timesteps", p->levels, BS_MAX_LEVELS, &nl));
    p->n_levels = (int)nl;
    p->quirk = q;
    return 0;
}

// Every batch of images, every repeat, every level: noise x0 to the level and denoise. The
// images and noises are random numbers of fixed streams (the values do not matter here).
static int bs_run(ops_ctx *ctx, const sched *sch, bs_net *g, const bs_plan *p, double *seconds) {
    sampler *s = NULL;
    float *x0 = NULL, *noise = NULL, *x = NULL;
    size_t cnt = (size_t)p->batch * g->per;
    int rc = 0;
    ERR_GOTO(rc, sampler_create(&s, ctx, sch, p->method, p->sample_step, p->quirk, p->batch, g->per));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&x0, cnt * sizeof(float)));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&noise, cnt * sizeof(float)));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&x, cnt * sizeof(float)));
    // warm-up: one guided evaluation (first-touch of the arenas, thread pools)
    ERR_GOTO(rc, ops_randn(ctx, x, cnt, (philox_key){9, 9, 9, 9}, 0));
    ERR_GOTO(rc, bs_eps(g, noise, x, 100, p->batch));
    ERR_GOTO(rc, ops_sync(ctx));
    g->evals = 0;
    double t0 = now_s();
    for (int i0 = 0; i0 < p->images; i0 += p->batch) {
        int n = p->images - i0 < p->batch ? p->images - i0 : p->batch;
        size_t nc = (size_t)n * g->per;
        ERR_GOTO(rc, ops_randn(ctx, x0, nc, (philox_key){1, (uint32_t)i0, 0, 0}, 0));
        for (int k = 0; k < p->repeats; k++) {
            ERR_GOTO(rc, ops_randn(ctx, noise, nc, (philox_key){2, (uint32_t)i0, (uint32_t)k, 0}, 0));
            for (int l = 0; l < p->n_levels; l++) {
                int t = p->levels[l];
                ERR_GOTO(rc, sampler_noise_to(ctx, sch, x, x0, noise, nc, t));
                ERR_GOTO(rc, sampler_run(s, x, n, t - 1, -1, bs_eps, g));
            }
        }
    }
    ERR_GOTO(rc, ops_sync(ctx));
    *seconds = now_s() - t0;
fail:
    if (x0) ops_free(ctx, x0);
    if (noise) ops_free(ctx, noise);
    if (x) ops_free(ctx, x);
    sampler_destroy(s);
    return rc;
}

// The PyTorch companion's images/s (its last line "images_per_s X"), or a negative code.
static int run_torch(const char *python, const cfg *c, const bs_plan *p, int threads, double *ips) {
    char dir[1024], cmd[8192], levels[256] = "";
    ERR_TRY(cli_config_dir(dir, sizeof dir));
    char *unet = NULL, *diff = NULL;
    ERR_TRY(cfg_canonical(c, "unet", &unet));
    int rc = cfg_canonical(c, "diffusion", &diff);
    if (rc < 0) {
        free(unet);
        return rc;
    }
    for (int l = 0; l < p->n_levels; l++)
        snprintf(levels + strlen(levels), sizeof levels - strlen(levels), "%s%d", l ? "," : "", p->levels[l]);
    snprintf(cmd, sizeof cmd,
             "'%s' '%s/../tools/torchref/bench_sample_torch.py' --unet-json '%s' --diffusion-json '%s' --images %d --batch %d "
             "--repeats %d --levels %s --sample-step %d --guidance %g --index-quirk %d --threads %d",
             python, dir, unet, diff, p->images, p->batch, p->repeats, levels, p->sample_step, p->guidance, p->quirk,
             threads);
    free(unet);
    free(diff);
    thr_unset_default(); // PyTorch runs with the OpenMP policy its users get (common/threads.h)
    FILE *f = popen(cmd, "r");
    ERR_IF(!f, ERR_IO, "cannot run %s", cmd);
    char line[512];
    *ips = -1;
    while (fgets(line, sizeof line, f)) {
        fputs(line, stdout);
        sscanf(line, "images_per_s %lf", ips);
    }
    int st = pclose(f);
    ERR_IF(st != 0 || *ips <= 0, ERR_IO, "the PyTorch benchmark failed (status %d): %s", st, cmd);
    return 0;
}

// The effective config: --config as given, else defaults.yml < config/fmnist.yml; then --set.
static int load_config(const cli_args *a, cfg **c) {
    if (cli_get(a, "config")) return cli_load_config(a, c);
    char dir[1024], def[1200], user[1200];
    ERR_TRY(cli_config_dir(dir, sizeof dir));
    snprintf(def, sizeof def, "%s/defaults.yml", dir);
    ERR_TRY(cli_resolve_config("fmnist", user, sizeof user));
    size_t n = cli_count(a, "set");
    const char *sets[n + 1];
    for (size_t i = 0; i < n; i++) sets[i] = cli_value(a, "set", i);
    return cfg_load_stack(c, def, user, sets, n);
}

int main(int argc, char **argv) {
    cli_args *a = NULL;
    cfg *c = NULL;
    ops_ctx *ctx = NULL;
    sched sch = {0};
    bs_net g = {0};
    int rc = cli_parse(&a, &spec, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, &spec);
        cli_args_free(a);
        return 0;
    }
    if (rc < 0) return cli_fail(rc);
    long images = 100, batch = 50;
    ERR_GOTO(rc, cli_get_int(a, "images", 100, &images));
    ERR_GOTO(rc, cli_get_int(a, "batch", 50, &batch));
    ERR_GOTO_IF(rc, images < 1 || images > 1000000 || batch < 1 || batch > 4096, ERR_USAGE,
                "--images must be in 1..1000000 and --batch in 1..4096");
    ERR_GOTO(rc, load_config(a, &c));
    bs_plan p = {0};
    ERR_GOTO(rc, bs_plan_from_cfg(c, &p));
    p.images = (int)images;
    p.batch = (int)(batch < images ? batch : images);
    int threads = cli_threads(a);
    ops_options o = ops_options_default();
    o.threads = threads;
    ERR_GOTO(rc, ops_ctx_create_named(&ctx, cli_device(a), &o));
    ERR_GOTO(rc, sched_from_cfg(&sch, c));
    const cfg *sec = NULL;
    unet_config uc;
    ERR_GOTO(rc, cfg_subtree(c, "unet", &sec));
    ERR_GOTO(rc, unet_config_from_cfg(sec, &uc));
    ERR_GOTO(rc, unet_create(&g.m, ctx, &uc, 2 * p.batch));
    ERR_GOTO(rc, nn_init_default(unet_net(g.m), 42));
    g.ctx = ctx;
    g.per = (size_t)uc.in_channels * uc.image_size * uc.image_size;
    g.batch = p.batch;
    g.w = (float)p.guidance;
    size_t big = (size_t)2 * p.batch * g.per * sizeof(float);
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&g.xx, big));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&g.e2, big));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&g.tt, (size_t)2 * p.batch * sizeof(float)));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&g.lab, (size_t)2 * p.batch * sizeof(int32_t)));
    double dt = 0;
    ERR_GOTO(rc, bs_run(ctx, &sch, &g, &p, &dt));
    double ips = p.images / dt;
    printf("diffood %s %d steps, levels %d, repeats %d, guidance %g: %d images, batch %d (UNet calls of %d), "
           "threads %d, device %s: %.3f s, %.3f images/s (%ld guided evaluations, %.1f UNet images/s)\n",
           sampler_method_name(p.method), p.sample_step, p.n_levels, p.repeats, p.guidance, p.images, p.batch,
           2 * p.batch, threads, ops_device_name(ops_ctx_device(ctx)), dt, ips, g.evals,
           2.0 * g.evals * p.batch / dt);
    fflush(stdout);
    if (cli_has(a, "compare")) {
        ERR_GOTO_IF(rc, p.method != SAMPLER_DDIM, ERR_UNSUPPORTED, "--compare: the PyTorch side runs ddim only");
        const char *py = cli_get(a, "python") ? cli_get(a, "python") : getenv("DIFFOOD_PYTHON");
        double tips = 0;
        ERR_GOTO(rc, run_torch(py && *py ? py : "/usr/bin/python3", c, &p, threads, &tips));
        printf("ratio diffood/pytorch sampling %d images batch %d threads %d: %.2fx\n", p.images, p.batch, threads,
               ips / tips);
    }
    fflush(stdout);
fail:
    if (ctx) {
        float *bufs[] = {g.xx, g.e2, g.tt, (float *)g.lab};
        for (size_t i = 0; i < 4; i++)
            if (bufs[i]) ops_free(ctx, bufs[i]);
    }
    unet_destroy(g.m);
    sched_free(&sch);
    ops_ctx_destroy(ctx);
    cfg_free(c);
    cli_args_free(a);
    return rc < 0 ? cli_fail(rc) : 0;
}
