// test_unet: the UNet (common/nn/unet.h) against PyTorch (tools/torchref, golden files in
// tests/data/nn/unet): parameter names and shapes of the paper configuration, the forward
// output, the loss, every parameter gradient and the input gradient, 10 AdamW steps; plus
// dropout, error cases and the config reader.
//
// This file also defines the golden-file helpers (nn_test_*) that test_resnet.c and
// test_optim.c declare and use.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/cfg.h"
#include "common/err.h"
#include "common/nn/nn.h"
#include "common/nn/optim.h"
#include "common/nn/unet.h"
#include "common/npy.h"

// --- golden-file helpers (shared with test_resnet.c, test_optim.c) ---------------------------

const char *nn_test_dir(const char *sub, char *buf, size_t cap);
float *nn_test_load(const char *dir, const char *file, size_t *n);
int32_t *nn_test_load_i32(const char *dir, const char *file, size_t *n);
double *nn_test_load_f64(const char *dir, const char *file, size_t *n);
void nn_test_load_table(nn_net *net, const char *dir, const float *flat, size_t nflat);
void nn_test_check_tsv(const nn_net *net, const char *tsv, int params_only_count, size_t want_params);
double nn_test_relerr(const float *a, const float *b, size_t n);
void nn_test_compare(const char *what, const float *got, const float *want, size_t n, double tol);
void nn_test_compare_grads(const nn_net *net, const char *dir, const float *golden, double tol);
float *nn_test_device(ops_ctx *ctx, const void *host, size_t bytes);
ops_ctx *nn_test_ctx(void);

// The folder tests/data/nn/<sub>: from the working directory (the repository root under `make
// test`), else from DIFFOOD_BIN's parents.
const char *nn_test_dir(const char *sub, char *buf, size_t cap) {
    if (!buf || cap < 64) return NULL;
    const char *roots[4] = {".", NULL, NULL, NULL};
    char r1[1024], r2[1024], r3[1024];
    const char *bin = getenv("DIFFOOD_BIN");
    if (bin) {
        snprintf(r1, sizeof r1, "%s/..", bin);
        snprintf(r2, sizeof r2, "%s/../../..", bin);
        snprintf(r3, sizeof r3, "%s/../..", bin);
        roots[1] = r1;
        roots[2] = r2;
        roots[3] = r3;
    }
    struct stat st;
    for (int i = 0; i < 4; i++) {
        if (!roots[i]) continue;
        snprintf(buf, cap, "%s/tests/data/nn/%s", roots[i], sub);
        if (stat(buf, &st) == 0) return buf;
    }
    ck_abort_msg("golden folder tests/data/nn/%s not found (run from the repository root)", sub);
    return NULL;
}

static void *nn_test_load_any(const char *dir, const char *file, size_t *n, ts_dtype want) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    npy_header h;
    void *data = NULL;
    int rc = npy_load(path, &h, &data);
    ck_assert_msg(rc == 0, "loading %s: %s", path, err_msg());
    ck_assert_msg(h.dtype == want, "%s: dtype %s", path, ts_dtype_name(h.dtype));
    *n = (size_t)npy_numel(&h);
    return data;
}

float *nn_test_load(const char *dir, const char *file, size_t *n) { return nn_test_load_any(dir, file, n, TS_F32); }
int32_t *nn_test_load_i32(const char *dir, const char *file, size_t *n) {
    return nn_test_load_any(dir, file, n, TS_I32);
}
double *nn_test_load_f64(const char *dir, const char *file, size_t *n) {
    return nn_test_load_any(dir, file, n, TS_F64);
}

// Reads names.tsv of a golden folder: checks that the net's table has the same entries in the
// same order with the same shapes and kinds, and sets every tensor from `flat`.
void nn_test_load_table(nn_net *net, const char *dir, const float *flat, size_t nflat) {
    char path[1200];
    snprintf(path, sizeof path, "%s/names.tsv", dir);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char line[512];
    int i = 0;
    while (fgets(line, sizeof line, f)) {
        char name[NN_NAME_MAX], shape[128], kind[16];
        size_t off = 0;
        ck_assert_msg(sscanf(line, "%95[^\t]\t%127[^\t]\t%zu\t%15s", name, shape, &off, kind) == 4 ||
                          sscanf(line, "%95[^\t]\t\t%zu\t%15s", name, &off, kind) == 3,
                      "%s: bad line '%s'", path, line);
        ck_assert_msg(i < net->n_entries, "%s: more entries than the net's %d", path, net->n_entries);
        const nn_entry *e = &net->entries[i];
        ck_assert_msg(!strcmp(e->name, name), "entry %d: net has '%s', golden '%s'", i, e->name, name);
        ck_assert_msg((e->kind == NN_KIND_PARAM) == !strcmp(kind, "param"), "'%s': kind differs", name);
        ck_assert_msg(off + e->numel <= nflat, "'%s' beyond params.npy", name);
        ck_assert_int_eq(nn_param_set(net, name, flat + off, e->numel), 0);
        i++;
    }
    fclose(f);
    ck_assert_int_eq(i, net->n_entries);
}

// Compares the net's table with a reference state_dict tsv (name <TAB> [d0, d1, ...]) in order.
void nn_test_check_tsv(const nn_net *net, const char *tsv, int entries, size_t want_params) {
    FILE *f = fopen(tsv, "r");
    ck_assert_msg(f != NULL, "cannot open %s", tsv);
    char line[512];
    int i = 0;
    while (fgets(line, sizeof line, f)) {
        char name[NN_NAME_MAX], shape[128];
        if (sscanf(line, "%95[^\t]\t%127[^\n]", name, shape) != 2) continue;
        ck_assert_msg(i < net->n_entries, "%s has more entries than the net (%d)", tsv, net->n_entries);
        char got[128];
        nn_shape_str(&net->entries[i], got, sizeof got);
        ck_assert_msg(!strcmp(net->entries[i].name, name) && !strcmp(got, shape),
                      "entry %d: net '%s' %s, reference '%s' %s", i, net->entries[i].name, got, name, shape);
        i++;
    }
    fclose(f);
    ck_assert_int_eq(i, net->n_entries);
    ck_assert_int_eq(i, entries);
    ck_assert_uint_eq(net->n_params, want_params);
}

double nn_test_relerr(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num) / (sqrt(den) > 0 ? sqrt(den) : 1.0);
}

// Norm-wise relative error <= tol, and no element off by more than 100 tol max|b| (max-abs
// sanity: a few wild elements cannot hide in a large norm).
void nn_test_compare(const char *what, const float *got, const float *want, size_t n, double tol) {
    double maxb = 0, maxd = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(got[i]), "%s[%zu] = %g is not finite", what, i, (double)got[i]);
        if (fabs(want[i]) > maxb) maxb = fabs(want[i]);
        if (fabs((double)got[i] - want[i]) > maxd) maxd = fabs((double)got[i] - want[i]);
    }
    double rel = nn_test_relerr(got, want, n);
    ck_assert_msg(rel <= tol, "%s: relative error %.3g > %.1g (max abs diff %.3g)", what, rel, tol, maxd);
    ck_assert_msg(maxd <= 100 * tol * maxb + 1e-30, "%s: max abs diff %.3g vs max %.3g", what, maxd, maxb);
}

// Every parameter gradient against the golden flat gradient (same layout as params.npy).
// A tensor passes with ||a-b|| <= tol ||b|| + 1e-6 ||all gradients|| / sqrt(entries): gradients
// that are zero in exact arithmetic (attention's k.bias) are float noise on both sides.
void nn_test_compare_grads(const nn_net *net, const char *dir, const float *golden, double tol) {
    char path[1200];
    snprintf(path, sizeof path, "%s/names.tsv", dir);
    float *g = malloc(net->n_params * sizeof *g);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(ops_download(net->ctx, g, net->grads, net->n_params * sizeof *g), 0);
    double total = 0;
    // golden offsets follow names.tsv (buffers included): walk both tables in step
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    size_t *goff = calloc((size_t)net->n_entries, sizeof *goff);
    int i = 0;
    while (fgets(line, sizeof line, f) && i < net->n_entries) {
        char *t1 = strchr(line, '\t');
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        ck_assert_ptr_nonnull(t2);
        goff[i++] = strtoull(t2 + 1, NULL, 10);
    }
    fclose(f);
    for (i = 0; i < net->n_entries; i++) {
        const nn_entry *e = &net->entries[i];
        if (e->kind != NN_KIND_PARAM) continue;
        for (size_t j = 0; j < e->numel; j++) total += (double)golden[goff[i] + j] * golden[goff[i] + j];
    }
    double atol = 1e-6 * sqrt(total) / sqrt((double)net->n_entries);
    int checked = 0;
    double worst = 0;
    const char *worst_name = "";
    for (i = 0; i < net->n_entries; i++) {
        const nn_entry *e = &net->entries[i];
        if (e->kind != NN_KIND_PARAM) continue;
        const float *a = g + e->offset, *b = golden + goff[i];
        double num = 0, den = 0;
        for (size_t j = 0; j < e->numel; j++) {
            ck_assert_msg(isfinite(a[j]), "grad %s[%zu] not finite", e->name, j);
            num += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
            den += (double)b[j] * b[j];
        }
        num = sqrt(num);
        den = sqrt(den);
        ck_assert_msg(num <= tol * den + atol, "gradient of %s: error %.3g, norm %.3g (relative %.3g > %.1g)", e->name,
                      num, den, den > 0 ? num / den : num, tol);
        if (den > 100 * atol && num / den > worst) {
            worst = num / den;
            worst_name = e->name;
        }
        checked++;
    }
    fprintf(stderr, "  %d parameter gradients match (worst relative error %.2g in %s)\n", checked, worst, worst_name);
    free(goff);
    free(g);
}

float *nn_test_device(ops_ctx *ctx, const void *host, size_t bytes) {
    void *p = NULL;
    ck_assert_int_eq(ops_alloc(ctx, &p, bytes), 0);
    if (host) ck_assert_int_eq(ops_upload(ctx, p, host, bytes), 0);
    return p;
}

ops_ctx *nn_test_ctx(void) {
    ops_ctx *ctx = NULL;
    ops_options o = ops_options_default();
    o.threads = 2;
    ck_assert_int_eq(ops_ctx_create(&ctx, OPS_DEV_CPU, &o), 0);
    return ctx;
}

// --- the golden UNet ----------------------------------------------------------------------------

// Must equal UNET_CFG of tools/torchref/make_golden.py.
static unet_config golden_cfg(void) {
    unet_config c = {.ch = 16, .ch_mult = {1, 2}, .n_levels = 2, .num_res_blocks = 1, .attn_res = {16}, .n_attn = 1,
                     .dropout = 0.0f, .resamp_with_conv = 1, .in_channels = 1, .out_ch = 1, .image_size = 16,
                     .num_classes = 10, .num_groups = 8};
    return c;
}

typedef struct {
    ops_ctx *ctx;
    unet_model *m;
    char dir[1100];
    float *params, *x, *noise, *t, *eps_want, *grads, *dx_want, *losses;
    int32_t *y;
    size_t np, nx, nt, ny, ne, ng, ndx, nl;
    float *dx_, *dt_, *dnoise_, *deps_, *dgrad_, *dloss_, *ddx_;
    int32_t *dy_;
} golden_unet;

// Must equal UNET2_CFG of make_golden.py: two blocks per level, three levels, RGB.
static unet_config golden2_cfg(void) {
    unet_config c = {.ch = 8, .ch_mult = {1, 2, 2}, .n_levels = 3, .num_res_blocks = 2, .attn_res = {8}, .n_attn = 1,
                     .dropout = 0.0f, .resamp_with_conv = 1, .in_channels = 3, .out_ch = 3, .image_size = 16,
                     .num_classes = 4, .num_groups = 4};
    return c;
}

static void golden_open_cfg(golden_unet *g, const char *sub, unet_config c, int with_steps) {
    memset(g, 0, sizeof *g);
    nn_test_dir(sub, g->dir, sizeof g->dir);
    g->ctx = nn_test_ctx();
    ck_assert_msg(unet_create(&g->m, g->ctx, &c, 2) == 0, "%s", err_msg());
    g->params = nn_test_load(g->dir, "params.npy", &g->np);
    nn_test_load_table(unet_net(g->m), g->dir, g->params, g->np);
    g->x = nn_test_load(g->dir, "x.npy", &g->nx);
    g->noise = nn_test_load(g->dir, "noise.npy", &g->nx);
    g->t = nn_test_load(g->dir, "t.npy", &g->nt);
    g->y = nn_test_load_i32(g->dir, "y.npy", &g->ny);
    g->eps_want = nn_test_load(g->dir, "eps.npy", &g->ne);
    g->grads = nn_test_load(g->dir, "grads.npy", &g->ng);
    g->dx_want = nn_test_load(g->dir, "dx.npy", &g->ndx);
    if (with_steps) g->losses = nn_test_load(g->dir, "losses.npy", &g->nl);
    ck_assert_uint_eq(g->nt, 2);
    g->dx_ = nn_test_device(g->ctx, g->x, g->nx * 4);
    g->dnoise_ = nn_test_device(g->ctx, g->noise, g->nx * 4);
    g->dt_ = nn_test_device(g->ctx, g->t, g->nt * 4);
    g->dy_ = (int32_t *)nn_test_device(g->ctx, g->y, g->ny * 4);
    g->deps_ = nn_test_device(g->ctx, NULL, g->ne * 4);
    g->dgrad_ = nn_test_device(g->ctx, NULL, g->ne * 4);
    g->dloss_ = nn_test_device(g->ctx, NULL, 4);
    g->ddx_ = nn_test_device(g->ctx, NULL, g->nx * 4);
}

static void golden_open(golden_unet *g, float dropout) {
    unet_config c = golden_cfg();
    c.dropout = dropout;
    golden_open_cfg(g, "unet", c, 1);
}

static void golden_close(golden_unet *g) {
    float *dev[] = {g->dx_, g->dt_, g->dnoise_, g->deps_, g->dgrad_, g->dloss_, g->ddx_, (float *)g->dy_};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) ops_free(g->ctx, dev[i]);
    free(g->params);
    free(g->x);
    free(g->noise);
    free(g->t);
    free(g->y);
    free(g->eps_want);
    free(g->grads);
    free(g->dx_want);
    free(g->losses);
    unet_destroy(g->m);
    ops_ctx_destroy(g->ctx);
}

// forward + METHOD.md loss (+ backward); returns the loss.
static float golden_step(golden_unet *g, int train, philox_key key, int backward) {
    int n = 2, per = (int)(g->nx / 2);
    ck_assert_msg(unet_forward(g->m, g->deps_, g->dx_, g->dt_, g->dy_, n, train, key) == 0, "%s", err_msg());
    ck_assert_int_eq(ops_mse_sum_loss(g->ctx, g->dloss_, g->dgrad_, g->deps_, g->dnoise_, n, per), 0);
    float loss = 0;
    ck_assert_int_eq(ops_download(g->ctx, &loss, g->dloss_, 4), 0);
    if (backward) {
        ck_assert_int_eq(nn_zero_grad(unet_net(g->m)), 0);
        ck_assert_int_eq(ops_fill(g->ctx, g->ddx_, 0.0f, g->nx), 0);
        ck_assert_msg(unet_backward(g->m, g->ddx_, g->dgrad_, n) == 0, "%s", err_msg());
    }
    return loss;
}

START_TEST(test_unet_cifar10_names) {
    ops_ctx *ctx = nn_test_ctx();
    unet_model *m = NULL;
    unet_config c = unet_config_cifar10();
    ck_assert_msg(unet_create(&m, ctx, &c, 1) == 0, "%s", err_msg());
    char dir[1100], tsv[1200];
    nn_test_dir("", dir, sizeof dir);
    snprintf(tsv, sizeof tsv, "%s/ddim-unet-cifar10-state-dict.tsv", dir);
    nn_test_check_tsv(unet_net(m), tsv, 329, 35751939);
    ck_assert_ptr_nonnull(nn_param_find(unet_net(m), "down.0.block.0.conv1.weight"));
    ck_assert_ptr_null(nn_param_find(unet_net(m), "down.0.block.0.conv3.weight"));
    unet_destroy(m);
    ops_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_unet_torch_reference_names) {
    // the PyTorch reference network of tools/torchref has exactly the reference tsv's names
    const char *py = getenv("DIFFOOD_PYTHON");
    char dir[1100], cmd[3000];
    nn_test_dir("", dir, sizeof dir);
    snprintf(cmd, sizeof cmd, "'%s' '%s/../../../tools/torchref/check_names.py' '%s' >/dev/null", py ? py : "/usr/bin/python3",
             dir, dir);
    int st = system(cmd);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed (status %d)", cmd, st);
}
END_TEST

static void golden_forward_backward(const char *sub, unet_config c) {
    golden_unet g;
    golden_open_cfg(&g, sub, c, 0);
    philox_key key = {1, 2, 3, 4};
    float loss = golden_step(&g, 1, key, 1);
    float *eps = malloc(g.ne * 4), *dx = malloc(g.nx * 4), want_loss;
    size_t nl = 0;
    float *l = nn_test_load(g.dir, "loss.npy", &nl);
    want_loss = l[0];
    free(l);
    ck_assert_int_eq(ops_download(g.ctx, eps, g.deps_, g.ne * 4), 0);
    ck_assert_int_eq(ops_download(g.ctx, dx, g.ddx_, g.nx * 4), 0);
    nn_test_compare("eps", eps, g.eps_want, g.ne, 1e-4);
    ck_assert_msg(fabs(loss - want_loss) <= 1e-4 * fabs(want_loss), "loss %.8g vs %.8g", (double)loss, (double)want_loss);
    nn_test_compare_grads(unet_net(g.m), g.dir, g.grads, 1e-4);
    nn_test_compare("dx", dx, g.dx_want, g.nx, 1e-4);
    // a second backward after zeroing gives the same gradients (nothing stale accumulates)
    ck_assert_int_eq(nn_zero_grad(unet_net(g.m)), 0);
    ck_assert_int_eq(unet_backward(g.m, NULL, g.dgrad_, 2), 0);
    nn_test_compare_grads(unet_net(g.m), g.dir, g.grads, 1e-4);
    free(eps);
    free(dx);
    golden_close(&g);
}

START_TEST(test_unet_golden_forward_backward) { golden_forward_backward("unet", golden_cfg()); }
END_TEST

START_TEST(test_unet2_golden_forward_backward) { golden_forward_backward("unet2", golden2_cfg()); }
END_TEST

START_TEST(test_unet_golden_adamw_steps) {
    golden_unet g;
    golden_open(&g, 0.0f);
    nn_net *net = unet_net(g.m);
    optim_adamw_config oc = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f,
                             .warmup = 4, .decay_every = 0, .decay_factor = 1.0f, .clip_norm = 1.0f};
    optim *o = NULL;
    ck_assert_int_eq(optim_adamw_create(&o, g.ctx, net->n_params, &oc), 0);
    size_t ngn = 0;
    float *gn = nn_test_load(g.dir, "gnorms.npy", &ngn);
    philox_key key = {0};
    for (int s = 0; s < 10; s++) {
        float loss = golden_step(&g, 1, key, 1), norm = 0;
        ck_assert_int_eq(optim_step(o, net->params, net->grads, &norm), 0);
        ck_assert_msg(fabs(loss - g.losses[s]) <= 1e-4 * fabs(g.losses[s]), "step %d: loss %.8g vs torch %.8g", s,
                      (double)loss, (double)g.losses[s]);
        ck_assert_msg(fabs(norm - gn[s]) <= 1e-4 * gn[s], "step %d: grad norm %.8g vs torch %.8g", s, (double)norm,
                      (double)gn[s]);
    }
    free(gn);
    optim_destroy(o);
    golden_close(&g);
}
END_TEST

START_TEST(test_unet_dropout) {
    // dropout 0.5: eval ignores it (golden output), train masks depend only on the key, and the
    // backward uses the forward's mask (directional derivative against finite differences)
    golden_unet g;
    golden_open(&g, 0.5f);
    philox_key k1 = {11, 0, 0, 0}, k2 = {12, 0, 0, 0};
    float *a = malloc(g.ne * 4), *b = malloc(g.ne * 4);
    golden_step(&g, 0, k1, 0);
    ck_assert_int_eq(ops_download(g.ctx, a, g.deps_, g.ne * 4), 0);
    nn_test_compare("eval eps with dropout 0.5", a, g.eps_want, g.ne, 1e-4);
    golden_step(&g, 1, k1, 0);
    ck_assert_int_eq(ops_download(g.ctx, a, g.deps_, g.ne * 4), 0);
    ck_assert_msg(nn_test_relerr(a, g.eps_want, g.ne) > 1e-2, "train-mode dropout changed nothing");
    golden_step(&g, 1, k2, 0);
    ck_assert_int_eq(ops_download(g.ctx, b, g.deps_, g.ne * 4), 0);
    ck_assert_msg(nn_test_relerr(a, b, g.ne) > 1e-2, "two dropout keys gave the same output");
    float l0 = golden_step(&g, 1, k1, 1);
    ck_assert_int_eq(ops_download(g.ctx, a, g.deps_, g.ne * 4), 0);
    // directional derivative along the gradient of conv_out.weight vs the loss change
    nn_net *net = unet_net(g.m);
    const nn_entry *e = nn_entry_find(net, "up.0.block.1.conv2.weight");
    ck_assert_ptr_nonnull(e);
    float *w = malloc(e->numel * 4), *gw = malloc(e->numel * 4);
    ck_assert_int_eq(nn_param_get(net, e->name, w, e->numel), 0);
    ck_assert_int_eq(ops_download(g.ctx, gw, net->grads + e->offset, e->numel * 4), 0);
    double gg = 0, gmax = 0;
    for (size_t j = 0; j < e->numel; j++) {
        gg += (double)gw[j] * gw[j];
        if (fabs(gw[j]) > gmax) gmax = fabs(gw[j]);
    }
    double h = 1e-3 / gmax;
    float *wp = malloc(e->numel * 4);
    for (size_t j = 0; j < e->numel; j++) wp[j] = (float)(w[j] + h * gw[j]);
    ck_assert_int_eq(nn_param_set(net, e->name, wp, e->numel), 0);
    float lp = golden_step(&g, 1, k1, 0);
    for (size_t j = 0; j < e->numel; j++) wp[j] = (float)(w[j] - h * gw[j]);
    ck_assert_int_eq(nn_param_set(net, e->name, wp, e->numel), 0);
    float lm = golden_step(&g, 1, k1, 0);
    double fd = ((double)lp - lm) / (2 * h);
    ck_assert_msg(fabs(fd - gg) <= 2e-2 * gg, "dropout backward: finite difference %.6g vs gradient %.6g (loss %g)", fd,
                  gg, (double)l0);
    free(w);
    free(gw);
    free(wp);
    free(a);
    free(b);
    golden_close(&g);
}
END_TEST

START_TEST(test_unet_errors) {
    ops_ctx *ctx = nn_test_ctx();
    unet_model *m = NULL;
    unet_config c = golden_cfg();
    c.num_groups = 5;
    ck_assert_int_eq(unet_create(&m, ctx, &c, 2), ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err_msg(), "num_groups"));
    c = golden_cfg();
    c.image_size = 15; // not a multiple of 2^(levels - 1)
    ck_assert_int_eq(unet_create(&m, ctx, &c, 2), ERR_CONFIG);
    c = golden_cfg();
    c.resamp_with_conv = 0;
    ck_assert_int_eq(unet_create(&m, ctx, &c, 2), ERR_UNSUPPORTED);
    c = golden_cfg();
    ck_assert_int_eq(unet_create(&m, ctx, &c, 0), ERR_USAGE);
    ck_assert_int_eq(unet_create(&m, ctx, &c, 2), 0);
    float *x = nn_test_device(ctx, NULL, 3 * 256 * 4), *t = nn_test_device(ctx, NULL, 12),
          *eps = nn_test_device(ctx, NULL, 3 * 256 * 4);
    int32_t yb[3] = {0, 11, 2};
    int32_t *y = (int32_t *)nn_test_device(ctx, yb, 12);
    ck_assert_int_eq(ops_fill(ctx, x, 0.5f, 3 * 256), 0);
    ck_assert_int_eq(ops_fill(ctx, t, 10.0f, 3), 0);
    philox_key k = {0};
    ck_assert_int_eq(unet_backward(m, NULL, eps, 2), ERR_USAGE); // no forward yet
    ck_assert_int_eq(unet_forward(m, eps, x, t, y, 3, 0, k), ERR_USAGE); // above max batch
    ck_assert_int_eq(unet_forward(m, eps, x, t, y, 2, 0, k), ERR_INPUT); // label 11 > K = 10
    ck_assert_int_eq(unet_forward(m, eps, x, t, y, 1, 0, k), 0);
    ck_assert_int_eq(unet_backward(m, NULL, eps, 2), ERR_USAGE); // batch differs
    ck_assert_int_eq(nn_param_set(unet_net(m), "no.such.weight", (float *)yb, 1), ERR_NOTFOUND);
    ck_assert_int_eq(nn_param_set(unet_net(m), "conv_in.bias", (float *)yb, 3), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "conv_in.bias"));
    ops_free(ctx, x);
    ops_free(ctx, t);
    ops_free(ctx, eps);
    ops_free(ctx, y);
    unet_destroy(m);
    ops_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_unet_config_from_cfg) {
    char dir[1100], defaults[1200];
    nn_test_dir("", dir, sizeof dir);
    snprintf(defaults, sizeof defaults, "%s/../../../config/defaults.yml", dir);
    const char *sets[] = {"unet.ch=24", "unet.ch_mult=[1,2,3]", "unet.attn_resolutions=[8,4]", "unet.dropout=0.25",
                          "unet.in_channels=1", "unet.out_ch=2", "unet.num_groups=4", "unet.num_classes=7"};
    cfg *root = NULL;
    ck_assert_msg(cfg_load_stack(&root, defaults, NULL, sets, 8) == 0, "%s", err_msg());
    const cfg *sec = NULL;
    ck_assert_int_eq(cfg_subtree(root, "unet", &sec), 0);
    unet_config c;
    ck_assert_msg(unet_config_from_cfg(sec, &c) == 0, "%s", err_msg());
    ck_assert_int_eq(c.ch, 24);
    ck_assert_int_eq(c.n_levels, 3);
    ck_assert_int_eq(c.ch_mult[2], 3);
    ck_assert_int_eq(c.n_attn, 2);
    ck_assert_int_eq(c.attn_res[1], 4);
    ck_assert_float_eq(c.dropout, 0.25f);
    ck_assert_int_eq(c.in_channels, 1);
    ck_assert_int_eq(c.out_ch, 2);
    ck_assert_int_eq(c.num_groups, 4);
    ck_assert_int_eq(c.num_classes, 7);
    cfg_free(root);
    // a configuration the network cannot build is refused with the key named
    const char *bad[] = {"unet.num_groups=5"};
    ck_assert_int_eq(cfg_load_stack(&root, defaults, NULL, bad, 1), 0);
    ck_assert_int_eq(cfg_subtree(root, "unet", &sec), 0);
    ck_assert_int_eq(unet_config_from_cfg(sec, &c), ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err_msg(), "num_groups"));
    cfg_free(root);
    // the paper configuration from defaults alone
    ck_assert_int_eq(cfg_load_stack(&root, defaults, NULL, NULL, 0), 0);
    ck_assert_int_eq(cfg_subtree(root, "unet", &sec), 0);
    ck_assert_int_eq(unet_config_from_cfg(sec, &c), 0);
    unet_config p = unet_config_cifar10();
    ck_assert_int_eq(memcmp(&c, &p, sizeof c), 0);
    cfg_free(root);
}
END_TEST

Suite *suite_unet(void) {
    Suite *s = suite_create("unet");
    TCase *tc = tcase_create("unet");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_unet_cifar10_names);
    tcase_add_test(tc, test_unet_torch_reference_names);
    tcase_add_test(tc, test_unet_golden_forward_backward);
    tcase_add_test(tc, test_unet2_golden_forward_backward);
    tcase_add_test(tc, test_unet_golden_adamw_steps);
    tcase_add_test(tc, test_unet_dropout);
    tcase_add_test(tc, test_unet_errors);
    tcase_add_test(tc, test_unet_config_from_cfg);
    suite_add_tcase(s, tc);
    return s;
}
