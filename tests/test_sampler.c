// test_sampler: the DDIM / PNDM2 / PNDM4 sampler (common/diffusion/sampler.h) against an
// independent float64 PyTorch implementation of METHOD.md 6 (tools/torchref/
// make_sampler_golden.py, golden files in tests/data/sampler/): a tiny UNet with fixed weights
// under classifier-free guidance (one UNet call of 2n images, labels y then the null label K),
// levels 0, 40, 45 and 110, with the index quirk and with the corrected indexing, compared step by
// step; the time values handed to the network; evaluation counts; error cases; and the
// detection noise of METHOD.md 7 (rng_stream + Philox + Box-Muller) against a Python
// re-implementation of the same addressing.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/diffusion/sampler.h"
#include "common/err.h"
#include "common/nn/unet.h"
#include "common/npy.h"
#include "common/rng.h"

// golden-file helpers of test_unet.c
const char *nn_test_dir(const char *sub, char *buf, size_t cap);
float *nn_test_load(const char *dir, const char *file, size_t *n);
int32_t *nn_test_load_i32(const char *dir, const char *file, size_t *n);
void nn_test_load_table(nn_net *net, const char *dir, const float *flat, size_t nflat);
void nn_test_compare(const char *what, const float *got, const float *want, size_t n, double tol);
float *nn_test_device(ops_ctx *ctx, const void *host, size_t bytes);
ops_ctx *nn_test_ctx(void);

#define SG_N 3          // images (make_sampler_golden.py N)
#define SG_STEP 50      // sample_step: skip 20
#define SG_GUIDE 2.0f   // guidance weight
#define SG_MAXCALLS 64  // network evaluations recorded per run

// Must equal UNET_CFG of tools/torchref/make_sampler_golden.py.
static unet_config sg_cfg(void) {
    unet_config c = {.ch = 8, .ch_mult = {1, 2}, .n_levels = 2, .num_res_blocks = 1, .attn_res = {8}, .n_attn = 1,
                     .dropout = 0.0f, .resamp_with_conv = 1, .in_channels = 1, .out_ch = 1, .image_size = 8,
                     .num_classes = 10, .num_groups = 4};
    return c;
}

// --- the guided network callback ---------------------------------------------------------------

typedef struct {
    ops_ctx *ctx;
    unet_model *m;
    size_t per;
    float *xx, *tt, *e2; // (2 max_n, per), (2 max_n), (2 max_n, per)
    int32_t *lab;        // (2 max_n): y, then K
    float w;
    int fail_at;         // return ERR_INTERRUPTED on this call (-1: never)
    int calls;
    float ts[SG_MAXCALLS];
    float *inputs;       // (SG_MAXCALLS, n, per) host copies of every x the network saw
} sg_net;

static int sg_eps(void *user, float *eps, const float *x, float t, int n) {
    sg_net *g = user;
    if (g->calls == g->fail_at) return err_set(ERR_INTERRUPTED, "test: stop at call %d", g->calls);
    size_t cnt = (size_t)n * g->per;
    if (g->calls < SG_MAXCALLS) {
        g->ts[g->calls] = t;
        if (g->inputs) ERR_TRY(ops_download(g->ctx, g->inputs + (size_t)g->calls * cnt, x, cnt * sizeof(float)));
    }
    g->calls++;
    ERR_TRY(ops_copy(g->ctx, g->xx, x, cnt * sizeof(float)));
    ERR_TRY(ops_copy(g->ctx, g->xx + cnt, x, cnt * sizeof(float)));
    ERR_TRY(ops_fill(g->ctx, g->tt, t, (size_t)2 * n));
    philox_key k0 = {0, 0, 0, 0}; // no dropout in eval mode
    ERR_TRY(unet_forward(g->m, g->e2, g->xx, g->tt, g->lab, 2 * n, 0, k0));
    return sampler_guide(g->ctx, eps, g->e2, g->e2 + cnt, cnt, g->w);
}

typedef struct {
    char dir[1100], udir[1100];
    ops_ctx *ctx;
    sched sch;
    sg_net net;
    float *x0, *noise, *params, *dx0, *dnoise, *dx;
    int32_t *y;
    size_t nx, np, ny;
} sg_env;

static void sg_open(sg_env *e) {
    memset(e, 0, sizeof *e);
    nn_test_dir("../sampler", e->dir, sizeof e->dir);
    nn_test_dir("../sampler/unet", e->udir, sizeof e->udir);
    e->ctx = nn_test_ctx();
    ck_assert_int_eq(sched_build(&e->sch, SCHED_LINEAR, 1000, 1e-4, 0.02), 0);
    size_t na = 0;
    float *abar = nn_test_load(e->dir, "abar.npy", &na);
    ck_assert_uint_eq(na, 1000);
    for (int i = 0; i < 1000; i++) ck_assert_msg(abar[i] == e->sch.abar[i], "abar[%d] %.9g vs golden %.9g", i,
                                                 (double)e->sch.abar[i], (double)abar[i]);
    free(abar);
    unet_config c = sg_cfg();
    sg_net *g = &e->net;
    g->ctx = e->ctx;
    ck_assert_msg(unet_create(&g->m, e->ctx, &c, 2 * SG_N) == 0, "%s", err_msg());
    e->params = nn_test_load(e->udir, "params.npy", &e->np);
    nn_test_load_table(unet_net(g->m), e->udir, e->params, e->np);
    e->x0 = nn_test_load(e->dir, "x0.npy", &e->nx);
    e->noise = nn_test_load(e->dir, "noise.npy", &e->nx);
    e->y = nn_test_load_i32(e->dir, "y.npy", &e->ny);
    ck_assert_uint_eq(e->ny, SG_N);
    g->per = e->nx / SG_N;
    ck_assert_uint_eq(g->per, 64);
    int32_t lab[2 * SG_N];
    for (int i = 0; i < SG_N; i++) {
        lab[i] = e->y[i];
        lab[SG_N + i] = c.num_classes;
    }
    size_t big = 2 * e->nx * sizeof(float);
    g->xx = nn_test_device(e->ctx, NULL, big);
    g->e2 = nn_test_device(e->ctx, NULL, big);
    g->tt = nn_test_device(e->ctx, NULL, 2 * SG_N * sizeof(float));
    g->lab = (int32_t *)nn_test_device(e->ctx, lab, sizeof lab);
    g->w = SG_GUIDE;
    g->fail_at = -1;
    g->inputs = malloc(SG_MAXCALLS * e->nx * sizeof(float));
    ck_assert_ptr_nonnull(g->inputs);
    e->dx0 = nn_test_device(e->ctx, e->x0, e->nx * sizeof(float));
    e->dnoise = nn_test_device(e->ctx, e->noise, e->nx * sizeof(float));
    e->dx = nn_test_device(e->ctx, NULL, e->nx * sizeof(float));
}

static void sg_close(sg_env *e) {
    sg_net *g = &e->net;
    float *dev[] = {g->xx, g->e2, g->tt, (float *)g->lab, e->dx0, e->dnoise, e->dx};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) ops_free(e->ctx, dev[i]);
    unet_destroy(g->m);
    free(g->inputs);
    free(e->x0);
    free(e->noise);
    free(e->y);
    free(e->params);
    sched_free(&e->sch);
    ops_ctx_destroy(e->ctx);
}

// --- the expected schedule of network calls (METHOD.md 6, written out independently) -----------

// Fills the time values of every evaluation and marks the first evaluation of each step;
// returns the number of evaluations.
static int sg_expected_calls(sampler_method m, int t_start, int t_end, float *ts, int *first, int cap) {
    int seq[64], k = 0;
    for (int t = t_start; t > t_end; t -= 1000 / SG_STEP) seq[k++] = t;
    int c = 0;
    for (int i = 0; i < k; i++) {
        int t = seq[i], tn = i + 1 < k ? seq[i + 1] : t_end;
        float tm = (float)(t + tn) / 2; // the network gets the midpoint as is (a half when t - tn is odd)
        float step[4] = {(float)t, (float)t, (float)t, (float)t};
        int ns = 1;
        if (m == SAMPLER_PNDM2 && i == 0) step[ns++] = tn;
        if (m == SAMPLER_PNDM4 && i < 3) {
            step[ns++] = tm;
            step[ns++] = tm;
            step[ns++] = tn;
        }
        for (int j = 0; j < ns; j++) {
            ck_assert_int_lt(c, cap);
            ts[c] = step[j];
            first[c] = j == 0 ? i : -1;
            c++;
        }
    }
    return c;
}

// One golden trajectory: noise to `level`, denoise from level - 1 to -1, compare the image at the
// start of every step (the network's first input of the step) and the result.
static void sg_check_traj(sg_env *e, sampler_method m, int quirk, int level) {
    char file[128], what[160];
    snprintf(file, sizeof file, "traj_%s_q%d_t%d.npy", sampler_method_name(m), quirk, level);
    size_t nt = 0;
    float *traj = nn_test_load(e->dir, file, &nt);
    int steps = (int)(nt / e->nx) - 1;
    ck_assert_uint_eq(nt, (size_t)(steps + 1) * e->nx);

    sg_net *g = &e->net;
    sampler *s = NULL;
    ck_assert_msg(sampler_create(&s, e->ctx, &e->sch, m, SG_STEP, quirk, SG_N, g->per) == 0, "%s", err_msg());
    if (level > 0) {
        ck_assert_int_eq(sampler_noise_to(e->ctx, &e->sch, e->dx, e->dx0, e->dnoise, e->nx, level), 0);
    } else { // level 0 takes no step: still x0 noised to abar[0]
        ck_assert_int_eq(sampler_noise_to(e->ctx, &e->sch, e->dx, e->dx0, e->dnoise, e->nx, 0), 0);
    }
    float *x = malloc(e->nx * sizeof *x);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(ops_download(e->ctx, x, e->dx, e->nx * sizeof *x), 0);
    snprintf(what, sizeof what, "%s noised", file);
    nn_test_compare(what, x, traj, e->nx, 1e-6);

    g->calls = 0;
    ck_assert_msg(sampler_run(s, e->dx, SG_N, level - 1, -1, sg_eps, g) == 0, "%s: %s", file, err_msg());
    float ts[SG_MAXCALLS];
    int first[SG_MAXCALLS];
    int want = sg_expected_calls(m, level - 1, -1, ts, first, SG_MAXCALLS);
    ck_assert_int_eq(g->calls, want);
    ck_assert_int_eq(sampler_evals(s, level - 1, -1), want);
    int seen = 0, step_call[SG_MAXCALLS];
    for (int c = 0; c < want; c++) {
        ck_assert_msg(g->ts[c] == ts[c], "%s: call %d at t = %g, expected %g", file, c, g->ts[c], ts[c]);
        if (first[c] < 0) continue;
        step_call[first[c]] = c;
        snprintf(what, sizeof what, "%s step %d input", file, first[c]);
        nn_test_compare(what, g->inputs + (size_t)c * e->nx, traj + (size_t)first[c] * e->nx, e->nx, 1e-4);
        seen++;
    }
    ck_assert_int_eq(seen, steps);
    ck_assert_int_eq(ops_download(e->ctx, x, e->dx, e->nx * sizeof *x), 0);
    snprintf(what, sizeof what, "%s result", file);
    nn_test_compare(what, x, traj + (size_t)steps * e->nx, e->nx, 1e-4);
    // the increment of every step (x_{i+1} - x_i is small beside x at low noise levels: comparing
    // it catches a wrong coefficient that the images alone would hide)
    float *dg = malloc(e->nx * sizeof *dg), *dw = malloc(e->nx * sizeof *dw);
    ck_assert(dg && dw);
    for (int i = 0; i < steps; i++) {
        const float *a = g->inputs + (size_t)step_call[i] * e->nx;
        const float *b = i + 1 < steps ? g->inputs + (size_t)step_call[i + 1] * e->nx : x;
        for (size_t j = 0; j < e->nx; j++) {
            dg[j] = b[j] - a[j];
            dw[j] = traj[(size_t)(i + 1) * e->nx + j] - traj[(size_t)i * e->nx + j];
        }
        snprintf(what, sizeof what, "%s step %d increment", file, i);
        nn_test_compare(what, dg, dw, e->nx, 1e-4);
    }
    free(dg);
    free(dw);
    free(x);
    free(traj);
    sampler_destroy(s);
}

// --- tests ---------------------------------------------------------------------------------------

START_TEST(test_sampler_golden) {
    // _i: method; every level, with and without the quirk
    sg_env e;
    sg_open(&e);
    static const int levels[] = {0, 40, 45, 110};
    for (int q = 1; q >= 0; q--)
        for (int l = 0; l < 4; l++) sg_check_traj(&e, (sampler_method)_i, q, levels[l]);
    sg_close(&e);
}
END_TEST

START_TEST(test_sampler_quirk_differs) {
    // the two indexings give different results (so the corrected goldens test something)
    char dir[1100];
    nn_test_dir("../sampler", dir, sizeof dir);
    size_t n1, n0;
    float *a = nn_test_load(dir, "traj_ddim_q1_t110.npy", &n1);
    float *b = nn_test_load(dir, "traj_ddim_q0_t110.npy", &n0);
    ck_assert_uint_eq(n1, n0);
    double d = 0;
    for (size_t i = n1 - 192; i < n1; i++) d += fabs((double)a[i] - b[i]);
    ck_assert_msg(d > 1e-3, "quirk and corrected trajectories agree (%g)", d);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_sampler_names) {
    sampler_method m;
    for (int i = 0; i < SAMPLER_METHOD_COUNT; i++) {
        ck_assert_int_eq(sampler_method_from_name(sampler_method_name((sampler_method)i), &m), 0);
        ck_assert_int_eq(m, i);
    }
    ck_assert_str_eq(sampler_method_name(SAMPLER_PNDM4), "pndm4");
    ck_assert_str_eq(sampler_method_name(SAMPLER_METHOD_COUNT), "?");
    ck_assert_int_eq(sampler_method_from_name("DDIM", &m), ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err_msg(), "pndm2"));
    ck_assert_int_eq(sampler_method_from_name(NULL, &m), ERR_CONFIG);
}
END_TEST

START_TEST(test_sampler_evals) {
    ops_ctx *ctx = nn_test_ctx();
    sched sch;
    ck_assert_int_eq(sched_build(&sch, SCHED_LINEAR, 1000, 1e-4, 0.02), 0);
    sampler *s[3];
    for (int i = 0; i < 3; i++) ck_assert_int_eq(sampler_create(&s[i], ctx, &sch, (sampler_method)i, 50, 1, 2, 4), 0);
    // (t_start, t_end) -> DDIM, PNDM2, PNDM4
    static const int cases[][5] = {{-1, -1, 0, 0, 0},   {5, 5, 0, 0, 0},     {0, -1, 1, 2, 4},
                                   {19, -1, 1, 2, 4},   {20, -1, 2, 3, 8},   {39, -1, 2, 3, 8},
                                   {59, -1, 3, 4, 12},  {79, -1, 4, 5, 13},  {119, -1, 6, 7, 15},
                                   {359, -1, 18, 19, 27}, {998, -1, 50, 51, 59}, {119, 59, 3, 4, 12}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int i = 0; i < 3; i++)
            ck_assert_msg(sampler_evals(s[i], cases[c][0], cases[c][1]) == cases[c][2 + i], "%s (%d, %d): %d, want %d",
                          sampler_method_name((sampler_method)i), cases[c][0], cases[c][1],
                          sampler_evals(s[i], cases[c][0], cases[c][1]), cases[c][2 + i]);
    sampler *s1 = NULL;
    ck_assert_int_eq(sampler_create(&s1, ctx, &sch, SAMPLER_DDIM, 1000, 1, 1, 4), 0); // skip 1
    ck_assert_int_eq(sampler_evals(s1, 359, -1), 360);
    sampler_destroy(s1);
    ck_assert_int_eq(sampler_create(&s1, ctx, &sch, SAMPLER_DDIM, 3, 1, 1, 4), 0); // skip 333
    ck_assert_int_eq(sampler_evals(s1, 998, -1), 3);
    sampler_destroy(s1);
    for (int i = 0; i < 3; i++) sampler_destroy(s[i]);
    sched_free(&sch);
    ops_ctx_destroy(ctx);
}
END_TEST

typedef struct {
    ops_ctx *ctx;
    int calls, stop;
} stop_net;

static int stop_eps(void *user, float *eps, const float *x, float t, int n) {
    (void)x;
    (void)t;
    stop_net *sn = user;
    if (++sn->calls == sn->stop) return err_set(ERR_INTERRUPTED, "stopped");
    return ops_fill(sn->ctx, eps, 0.5f, (size_t)n * 4);
}

START_TEST(test_sampler_errors) {
    ops_ctx *ctx = nn_test_ctx();
    sched sch;
    ck_assert_int_eq(sched_build(&sch, SCHED_LINEAR, 1000, 1e-4, 0.02), 0);
    sampler *s = NULL;
    ck_assert_int_eq(sampler_create(&s, ctx, &sch, SAMPLER_DDIM, 0, 1, 2, 4), ERR_CONFIG);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(sampler_create(&s, ctx, &sch, SAMPLER_DDIM, 1001, 1, 2, 4), ERR_CONFIG);
    ck_assert_int_eq(sampler_create(&s, ctx, &sch, SAMPLER_DDIM, 50, 1, 0, 4), ERR_USAGE);
    ck_assert_int_eq(sampler_create(&s, ctx, &sch, SAMPLER_DDIM, 50, 1, 2, 0), ERR_USAGE);
    ck_assert_int_eq(sampler_create(&s, ctx, &sch, SAMPLER_METHOD_COUNT, 50, 1, 2, 4), ERR_USAGE);
    ck_assert_ptr_null(s);

    float *x = nn_test_device(ctx, NULL, 3 * 4 * sizeof(float));
    ck_assert_int_eq(ops_fill(ctx, x, 1.0f, 12), 0);
    for (int m = 0; m < SAMPLER_METHOD_COUNT; m++) {
        ck_assert_int_eq(sampler_create(&s, ctx, &sch, (sampler_method)m, 50, 1, 2, 4), 0);
        stop_net sn = {ctx, 0, 0};
        ck_assert_int_eq(sampler_run(s, x, 3, 39, -1, stop_eps, &sn), ERR_USAGE); // n > max_n
        ck_assert_int_eq(sampler_run(s, x, 0, 39, -1, stop_eps, &sn), ERR_USAGE);
        ck_assert_int_eq(sampler_run(s, x, 2, 999, -1, stop_eps, &sn), ERR_USAGE); // abar[1000]
        ck_assert_int_eq(sampler_run(s, x, 2, 998, -2, stop_eps, &sn), ERR_USAGE);
        ck_assert_int_eq(sampler_run(s, x, 2, -1, -1, stop_eps, &sn), 0); // level 0: nothing
        ck_assert_int_eq(sampler_run(s, x, 2, 10, 30, stop_eps, &sn), 0);
        ck_assert_int_eq(sn.calls, 0);
        // an error of the network passes through unchanged, on every evaluation
        for (int stop = 1; stop <= 5; stop++) {
            sn.calls = 0;
            sn.stop = stop;
            ck_assert_int_eq(sampler_run(s, x, 2, 119, -1, stop_eps, &sn), ERR_INTERRUPTED);
            ck_assert_int_eq(sn.calls, stop);
        }
        // the top level: 998 with the quirk (reads abar[999]), 999 without it
        sn.calls = 0;
        sn.stop = -1;
        ck_assert_int_eq(sampler_run(s, x, 2, 998, -1, stop_eps, &sn), 0);
        ck_assert_int_eq(sn.calls, sampler_evals(s, 998, -1));
        sampler_destroy(s);
        ck_assert_int_eq(sampler_create(&s, ctx, &sch, (sampler_method)m, 50, 0, 2, 4), 0);
        ck_assert_int_eq(sampler_run(s, x, 2, 999, -1, stop_eps, &sn), 0);
        ck_assert_int_eq(sampler_run(s, x, 2, 1000, -1, stop_eps, &sn), ERR_USAGE);
        sampler_destroy(s);
    }
    ck_assert_int_eq(sampler_noise_to(ctx, &sch, x, x, x, 12, 1000), ERR_USAGE);
    ck_assert_int_eq(sampler_noise_to(ctx, &sch, x, x, x, 12, -1), ERR_USAGE);
    sampler_destroy(NULL);
    ops_free(ctx, x);
    sched_free(&sch);
    ops_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_sampler_guide_noise_to) {
    ops_ctx *ctx = nn_test_ctx();
    sched sch;
    ck_assert_int_eq(sched_build(&sch, SCHED_LINEAR, 1000, 1e-4, 0.02), 0);
    float hc[5] = {1, -2, 0.5f, 3, 0}, hn[5] = {0.5f, 1, -1, 3, 2}, out[5];
    float *c = nn_test_device(ctx, hc, sizeof hc), *u = nn_test_device(ctx, hn, sizeof hn);
    ck_assert_int_eq(sampler_guide(ctx, c, c, u, 5, 2.0f), 0); // e aliases e_cond
    ck_assert_int_eq(ops_download(ctx, out, c, sizeof out), 0);
    for (int i = 0; i < 5; i++) ck_assert_float_eq_tol(out[i], 3 * hc[i] - 2 * hn[i], 1e-6);
    ck_assert_int_eq(ops_upload(ctx, c, hc, sizeof hc), 0);
    ck_assert_int_eq(sampler_noise_to(ctx, &sch, c, c, u, 5, 360), 0); // x aliases x0
    ck_assert_int_eq(ops_download(ctx, out, c, sizeof out), 0);
    double a = sch.abar[360];
    for (int i = 0; i < 5; i++) ck_assert_float_eq_tol(out[i], sqrt(a) * hc[i] + sqrt(1 - a) * hn[i], 1e-6);
    ops_free(ctx, c);
    ops_free(ctx, u);
    sched_free(&sch);
    ops_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_sampler_noise_golden) {
    // detection noise of (seed, input store key, image, repeat): rng_stream(seed, RNG_NOISE_SAMPLE,
    // rng_id_str(store key hex), index, repeat), normals 0..CHW-1, against the Python version
    char dir[1100], path[1300], key[128] = "";
    nn_test_dir("../sampler", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/noise_store_key.txt", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(key, sizeof key, f));
    fclose(f);
    key[strcspn(key, "\n")] = 0;
    ck_assert_int_eq((int)strlen(key), 32);
    npy_header h;
    int64_t *cases = NULL, *keys = NULL;
    snprintf(path, sizeof path, "%s/noise_cases.npy", dir);
    ck_assert_int_eq(npy_load(path, &h, (void **)&cases), 0);
    ck_assert_int_eq(h.dtype, TS_I64);
    int nc = (int)h.shape[0];
    snprintf(path, sizeof path, "%s/noise_keys.npy", dir);
    ck_assert_int_eq(npy_load(path, &h, (void **)&keys), 0);
    ck_assert_int_eq(h.dtype, TS_I64);
    size_t nv = 0;
    float *vals = nn_test_load(dir, "noise_vals.npy", &nv);
    size_t chw = nv / (size_t)nc;
    ck_assert_uint_eq(chw, 1024);
    float *got = malloc(chw * sizeof *got);
    ops_ctx *ctx = nn_test_ctx();
    float *dev = nn_test_device(ctx, NULL, chw * sizeof(float));
    uint64_t set = rng_id_str(key);
    for (int c = 0; c < nc; c++) {
        const int64_t *r = cases + 3 * c;
        philox_key k = rng_stream((uint64_t)r[0], RNG_NOISE_SAMPLE, set, (uint64_t)r[1], (uint64_t)r[2]);
        ck_assert_msg(k.k0 == (uint32_t)keys[4 * c] && k.k1 == (uint32_t)keys[4 * c + 1] &&
                          k.c2 == (uint32_t)keys[4 * c + 2] && k.c3 == (uint32_t)keys[4 * c + 3],
                      "case %d: key words differ", c);
        const float *want = vals + (size_t)c * chw;
        rng_fill_normal(k, 0, got, chw);
        for (size_t j = 0; j < chw; j++)
            ck_assert_msg(fabsf(got[j] - want[j]) <= 1e-6f, "case %d normal %zu: %.9g vs %.9g", c, j, (double)got[j],
                          (double)want[j]);
        ck_assert_int_eq(ops_randn(ctx, dev, chw, k, 0), 0); // the op gives the same numbers
        ck_assert_int_eq(ops_download(ctx, got, dev, chw * sizeof(float)), 0);
        for (size_t j = 0; j < chw; j++) ck_assert_float_eq_tol(got[j], want[j], 1e-6f);
        ck_assert_float_eq_tol(rng_normal(k, 777), want[777], 1e-6f);
    }
    ops_free(ctx, dev);
    ops_ctx_destroy(ctx);
    free(got);
    free(vals);
    free(cases);
    free(keys);
}
END_TEST

Suite *suite_sampler(void) {
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("sampler");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_sampler_golden, 0, SAMPLER_METHOD_COUNT);
    tcase_add_test(tc, test_sampler_quirk_differs);
    tcase_add_test(tc, test_sampler_names);
    tcase_add_test(tc, test_sampler_evals);
    tcase_add_test(tc, test_sampler_errors);
    tcase_add_test(tc, test_sampler_guide_noise_to);
    tcase_add_test(tc, test_sampler_noise_golden);
    suite_add_tcase(s, tc);
    return s;
}
