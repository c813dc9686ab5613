// test_resnet: ResNet-18 (common/nn/resnet.h) against PyTorch (golden files in
// tests/data/nn/resnet, width 8): names and shapes of the width-64 network, the training-mode
// forward (logits, features, running statistics), the cross-entropy gradient of every parameter
// and of the input, the eval-mode forward, 10 SGD Nesterov steps; error cases.
// Golden-file helpers come from test_unet.c.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/err.h"
#include "common/nn/nn.h"
#include "common/nn/optim.h"
#include "common/nn/resnet.h"

const char *nn_test_dir(const char *sub, char *buf, size_t cap);
float *nn_test_load(const char *dir, const char *file, size_t *n);
int32_t *nn_test_load_i32(const char *dir, const char *file, size_t *n);
void nn_test_load_table(nn_net *net, const char *dir, const float *flat, size_t nflat);
void nn_test_check_tsv(const nn_net *net, const char *tsv, int entries, size_t want_params);
double nn_test_relerr(const float *a, const float *b, size_t n);
void nn_test_compare(const char *what, const float *got, const float *want, size_t n, double tol);
void nn_test_compare_grads(const nn_net *net, const char *dir, const float *golden, double tol);
float *nn_test_device(ops_ctx *ctx, const void *host, size_t bytes);
ops_ctx *nn_test_ctx(void);

#define RB 4   // batch of the golden run
#define RK 10  // classes
#define RW 8   // width

typedef struct {
    ops_ctx *ctx;
    resnet_model *m;
    char dir[1100];
    float *params, *x;
    int32_t *y;
    size_t np, nx, ny;
    float *dx_, *dlog_, *dloss_, *ddx_;
    int32_t *dy_;
} golden_rn;

// 2 threads and more: the replicas with sync BatchNorm (common/nn/resnet.c)
static void rn_open_threads(golden_rn *g, int threads) {
    memset(g, 0, sizeof *g);
    nn_test_dir("resnet", g->dir, sizeof g->dir);
    ops_options o = ops_options_default();
    o.threads = threads;
    ck_assert_int_eq(ops_ctx_create(&g->ctx, OPS_DEV_CPU, &o), 0);
    resnet_config c = resnet_config_default();
    c.width = RW;
    ck_assert_msg(resnet_create(&g->m, g->ctx, &c, RB) == 0, "%s", err_msg());
    g->params = nn_test_load(g->dir, "params.npy", &g->np);
    nn_test_load_table(resnet_net(g->m), g->dir, g->params, g->np);
    g->x = nn_test_load(g->dir, "x.npy", &g->nx);
    g->y = nn_test_load_i32(g->dir, "y.npy", &g->ny);
    ck_assert_uint_eq(g->ny, RB);
    g->dx_ = nn_test_device(g->ctx, g->x, g->nx * 4);
    g->dy_ = (int32_t *)nn_test_device(g->ctx, g->y, g->ny * 4);
    g->dlog_ = nn_test_device(g->ctx, NULL, RB * RK * 4);
    g->dloss_ = nn_test_device(g->ctx, NULL, 4);
    g->ddx_ = nn_test_device(g->ctx, NULL, g->nx * 4);
}

static void rn_close(golden_rn *g) {
    float *dev[] = {g->dx_, g->dlog_, g->dloss_, g->ddx_, (float *)g->dy_};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) ops_free(g->ctx, dev[i]);
    free(g->params);
    free(g->x);
    free(g->y);
    resnet_destroy(g->m);
    ops_ctx_destroy(g->ctx);
}

// Training forward + cross-entropy (+ backward); returns the loss; logits/feature to host.
static float rn_step(golden_rn *g, int backward, float *logits, float *feat) {
    const float *lg = NULL, *ft = NULL;
    ck_assert_msg(resnet_forward(g->m, g->dx_, RB, 1, &lg, &ft) == 0, "%s", err_msg());
    ck_assert_int_eq(ops_softmax_xent_loss(g->ctx, g->dloss_, g->dlog_, lg, g->dy_, RB, RK), 0);
    float loss = 0;
    ck_assert_int_eq(ops_download(g->ctx, &loss, g->dloss_, 4), 0);
    if (logits) ck_assert_int_eq(ops_download(g->ctx, logits, lg, RB * RK * 4), 0);
    if (feat) ck_assert_int_eq(ops_download(g->ctx, feat, ft, RB * 8 * RW * 4), 0);
    if (backward) {
        ck_assert_int_eq(nn_zero_grad(resnet_net(g->m)), 0);
        ck_assert_int_eq(ops_fill(g->ctx, g->ddx_, 0.0f, g->nx), 0);
        ck_assert_msg(resnet_backward(g->m, g->ddx_, g->dlog_, RB) == 0, "%s", err_msg());
    }
    return loss;
}

START_TEST(test_resnet_names) {
    ops_ctx *ctx = nn_test_ctx();
    resnet_model *m = NULL;
    resnet_config c = resnet_config_default();
    ck_assert_msg(resnet_create(&m, ctx, &c, 1) == 0, "%s", err_msg());
    char dir[1100], tsv[1200];
    nn_test_dir("", dir, sizeof dir);
    snprintf(tsv, sizeof tsv, "%s/resnet18-32x32-state-dict.tsv", dir);
    nn_test_check_tsv(resnet_net(m), tsv, 122, 11173962);
    const nn_entry *e = nn_entry_find(resnet_net(m), "layer3.0.shortcut.1.running_var");
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->kind, NN_KIND_BUFFER);
    float v[256];
    ck_assert_int_eq(nn_param_get(resnet_net(m), e->name, v, 256), 0);
    ck_assert(v[0] == 1.0f && v[255] == 1.0f); // running variances start at 1
    resnet_destroy(m);
    ops_ctx_destroy(ctx);
}
END_TEST

// One training step against torch's, on one thread (per-op BatchNorm) and on two (replicas).
START_TEST(test_resnet_golden_train_forward_backward) {
    golden_rn g;
    rn_open_threads(&g, 1 + _i);
    float logits[RB * RK], feat[RB * 8 * RW];
    float loss = rn_step(&g, 1, logits, feat);
    size_t n = 0;
    float *want = nn_test_load(g.dir, "logits_train.npy", &n);
    nn_test_compare("train logits", logits, want, n, 1e-4);
    free(want);
    want = nn_test_load(g.dir, "feature_train.npy", &n);
    nn_test_compare("train feature", feat, want, n, 1e-4);
    free(want);
    want = nn_test_load(g.dir, "loss.npy", &n);
    ck_assert_msg(fabs(loss - want[0]) <= 1e-4 * fabs(want[0]), "loss %.8g vs %.8g", (double)loss, (double)want[0]);
    free(want);
    want = nn_test_load(g.dir, "grads.npy", &n);
    nn_test_compare_grads(resnet_net(g.m), g.dir, want, 1e-4);
    free(want);
    float *dx = malloc(g.nx * 4);
    ck_assert_int_eq(ops_download(g.ctx, dx, g.ddx_, g.nx * 4), 0);
    want = nn_test_load(g.dir, "dx.npy", &n);
    nn_test_compare("dx", dx, want, n, 1e-4);
    free(want);
    free(dx);
    // running statistics after one training forward (and num_batches_tracked = 1), every
    // buffer in table order
    want = nn_test_load(g.dir, "buffers_after.npy", &n);
    nn_net *net = resnet_net(g.m);
    int checked = 0;
    size_t off = 0;
    for (int i = 0; i < net->n_entries; i++) {
        const nn_entry *e = &net->entries[i];
        if (e->kind != NN_KIND_BUFFER) continue;
        ck_assert_msg(off + e->numel <= n, "buffers_after.npy too short at %s", e->name);
        float *got = malloc(e->numel * 4);
        ck_assert_int_eq(nn_param_get(net, e->name, got, e->numel), 0);
        nn_test_compare(e->name, got, want + off, e->numel, 1e-4);
        free(got);
        off += e->numel;
        checked++;
    }
    ck_assert_uint_eq(off, n);
    ck_assert_int_eq(checked, 20 * 3);
    free(want);
    // eval mode with the updated running statistics
    const float *lg = NULL, *ft = NULL;
    ck_assert_int_eq(resnet_forward(g.m, g.dx_, RB, 0, &lg, &ft), 0);
    ck_assert_int_eq(ops_download(g.ctx, logits, lg, sizeof logits), 0);
    ck_assert_int_eq(ops_download(g.ctx, feat, ft, sizeof feat), 0);
    want = nn_test_load(g.dir, "logits_eval.npy", &n);
    nn_test_compare("eval logits", logits, want, n, 1e-4);
    free(want);
    want = nn_test_load(g.dir, "feature_eval.npy", &n);
    nn_test_compare("eval feature", feat, want, n, 1e-4);
    free(want);
    // an eval forward cannot be differentiated
    ck_assert_int_eq(resnet_backward(g.m, NULL, g.dlog_, RB), ERR_USAGE);
    rn_close(&g);
}
END_TEST

// Ten SGD steps on one thread (per-op BatchNorm) and on two (replicas, sync BatchNorm): the
// losses follow torch's.
START_TEST(test_resnet_golden_sgd_steps) {
    golden_rn g;
    rn_open_threads(&g, 1 + _i);
    nn_net *net = resnet_net(g.m);
    optim_sgd_config oc = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1, .total_steps = 10,
                           .lr_floor = 1e-6f, .clip_norm = 0.0f};
    optim *o = NULL;
    ck_assert_int_eq(optim_sgd_create(&o, g.ctx, net->n_params, &oc), 0);
    size_t nl = 0;
    float *losses = nn_test_load(g.dir, "losses.npy", &nl);
    ck_assert_uint_eq(nl, 10);
    for (int s = 0; s < 10; s++) {
        float loss = rn_step(&g, 1, NULL, NULL);
        ck_assert_int_eq(optim_step(o, net->params, net->grads, NULL), 0);
        // SGD with momentum amplifies float32 rounding at kinks (ReLU, a logit crossing): whether
        // a run meets the kink at step 4 depends on its rounding alone. Seen (Dec 2026): an AVX2
        // build 3.9e-4 at step 4; the sync-BatchNorm replicas with Winograd 3.9e-4 at step 4, 2.5e-3
        // at step 6; one thread with the direct kernels 1.1e-4 at step 4, 1.4e-3 at step 5; the
        // runs that miss it stay under 2e-6 throughout. DIFFOOD_TEST_VERBOSE=1 prints every step.
        double tol = 5e-3;
        if (getenv("DIFFOOD_TEST_VERBOSE"))
            fprintf(stderr, "%d thread(s), step %d: loss %.8g vs torch %.8g\n", 1 + _i, s, (double)loss, (double)losses[s]);
        ck_assert_msg(fabs(loss - losses[s]) <= tol * fabs(losses[s]) + 1e-6, "%d thread(s), step %d: loss %.8g vs torch %.8g",
                      1 + _i, s, (double)loss, (double)losses[s]);
    }
    free(losses);
    optim_destroy(o);
    rn_close(&g);
}
END_TEST

START_TEST(test_resnet_errors_and_config) {
    ops_ctx *ctx = nn_test_ctx();
    resnet_model *m = NULL;
    resnet_config c = resnet_config_default();
    c.width = 0;
    ck_assert_int_eq(resnet_create(&m, ctx, &c, 2), ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err_msg(), "resnet.width"));
    c = resnet_config_default();
    c.width = 4;
    c.in_channels = 1;
    ck_assert_int_eq(resnet_create(&m, ctx, &c, 0), ERR_USAGE);
    ck_assert_int_eq(resnet_create(&m, ctx, &c, 2), 0);
    float *x = nn_test_device(ctx, NULL, 3 * 1024 * 4);
    ck_assert_int_eq(ops_fill(ctx, x, 0.25f, 3 * 1024), 0);
    ck_assert_int_eq(resnet_backward(m, NULL, x, 2), ERR_USAGE); // no forward
    ck_assert_int_eq(resnet_forward(m, x, 3, 1, NULL, NULL), ERR_USAGE);
    const float *lg = NULL;
    ck_assert_int_eq(resnet_forward(m, x, 2, 1, &lg, NULL), 0);
    ck_assert_int_eq(resnet_backward(m, NULL, x, 1), ERR_USAGE); // batch differs
    // num_batches_tracked counts training forwards
    float nbt = 0;
    ck_assert_int_eq(resnet_forward(m, x, 2, 1, NULL, NULL), 0);
    ck_assert_int_eq(nn_param_get(resnet_net(m), "layer4.1.bn2.num_batches_tracked", &nbt, 1), 0);
    ck_assert(nbt == 2.0f);
    ck_assert_int_eq(resnet_forward(m, x, 2, 0, NULL, NULL), 0);
    ck_assert_int_eq(nn_param_get(resnet_net(m), "bn1.num_batches_tracked", &nbt, 1), 0);
    ck_assert(nbt == 2.0f);
    ops_free(ctx, x);
    resnet_destroy(m);
    // config from a config tree (defaults with overrides)
    char dir[1100], defaults[1200];
    nn_test_dir("", dir, sizeof dir);
    snprintf(defaults, sizeof defaults, "%s/../../../config/defaults.yml", dir);
    const char *sets[] = {"resnet.width=16", "resnet.in_channels=1", "resnet.num_classes=5"};
    cfg *root = NULL;
    ck_assert_msg(cfg_load_stack(&root, defaults, NULL, sets, 3) == 0, "%s", err_msg());
    const cfg *sec = NULL;
    ck_assert_int_eq(cfg_subtree(root, "resnet", &sec), 0);
    ck_assert_msg(resnet_config_from_cfg(sec, &c) == 0, "%s", err_msg());
    ck_assert_int_eq(c.width, 16);
    ck_assert_int_eq(c.in_channels, 1);
    ck_assert_int_eq(c.num_classes, 5);
    cfg_free(root);
    ops_ctx_destroy(ctx);
}
END_TEST

Suite *suite_resnet(void) {
    Suite *s = suite_create("resnet");
    TCase *tc = tcase_create("resnet");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_resnet_names);
    tcase_add_loop_test(tc, test_resnet_golden_train_forward_backward, 0, 2);
    tcase_add_loop_test(tc, test_resnet_golden_sgd_steps, 0, 2);
    tcase_add_test(tc, test_resnet_errors_and_config);
    suite_add_tcase(s, tc);
    return s;
}
