// test_nn_rep: the per-thread replicas of common/nn/nn_rep.h. A CPU context with threads > 1
// runs the UNet (forward and backward) and the ResNet one batch slice per thread: the outputs of
// the UNet and of the ResNet's eval forward must be the same bits as one thread computing the
// whole batch; the ResNet's training step (sync BatchNorm) must equal one thread's up to
// rounding and be the same bits from run to run. The replicas' barrier must release every
// replica when one fails.
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/nn/nn.h"
#include "common/nn/nn_rep.h"
#include "common/nn/resnet.h"
#include "common/nn/unet.h"
#include "kernels/cpu/ref/ref_ops.h"

// shared nn test helpers (test_unet.c)
float *nn_test_device(ops_ctx *ctx, const void *host, size_t bytes);
void nn_test_compare(const char *what, const float *got, const float *want, size_t n, double tol);

// A small UNet with attention at 16x16 (the golden configuration of test_unet.c, with dropout).
static unet_config rep_unet_cfg(void) {
    unet_config c = {.ch = 16, .ch_mult = {1, 2}, .n_levels = 2, .num_res_blocks = 1, .attn_res = {16}, .n_attn = 1,
                     .dropout = 0.0f, .resamp_with_conv = 1, .in_channels = 1, .out_ch = 1, .image_size = 16,
                     .num_classes = 10, .num_groups = 8};
    return c;
}

// Replicas (a CPU context with threads > 1 runs one slice of the batch per thread): the same
// output bits as one thread computing the whole batch, dropout included; gradients equal up to
// the order of the sum over images; a worker's error reaches the caller with its message.
START_TEST(test_unet_replicas) {
    unet_config c = rep_unet_cfg();
    c.dropout = 0.3f;
    const int n = 7, S = c.image_size;
    ops_ctx *c1 = NULL, *c3 = NULL;
    ops_options o = ops_options_default();
    o.threads = 1;
    ck_assert_int_eq(ops_ctx_create(&c1, OPS_DEV_CPU, &o), 0);
    o.threads = 3;
    ck_assert_int_eq(ops_ctx_create(&c3, OPS_DEV_CPU, &o), 0);
    unet_model *m1 = NULL, *m3 = NULL;
    ck_assert_int_eq(unet_create(&m1, c1, &c, 8), 0);
    ck_assert_int_eq(unet_create(&m3, c3, &c, 8), 0);
    ck_assert_int_eq(nn_init_default(unet_net(m1), 5), 0);
    ck_assert_int_eq(nn_init_default(unet_net(m3), 5), 0);
    size_t ne = (size_t)n * S * S;
    float *hx = malloc(ne * 4), *ht = malloc(n * 4), *hd = malloc(ne * 4);
    int32_t hy[7];
    ref_fill_uniform(hx, ne, 1, -1, 1);
    ref_fill_uniform(hd, ne, 2, -1, 1);
    for (int i = 0; i < n; i++) {
        ht[i] = (float)(i * 131 % 1000);
        hy[i] = i % (c.num_classes + 1);
    }
    float *out[2], *dx[2], *eps[2];
    ops_ctx *ctx[2] = {c1, c3};
    unet_model *m[2] = {m1, m3};
    philox_key key = {3, 1, 4, 1};
    for (int k = 0; k < 2; k++) {
        float *x = nn_test_device(ctx[k], hx, ne * 4), *t = nn_test_device(ctx[k], ht, n * 4);
        float *d = nn_test_device(ctx[k], hd, ne * 4), *e = nn_test_device(ctx[k], NULL, ne * 4);
        float *g = nn_test_device(ctx[k], NULL, ne * 4);
        int32_t *y = (int32_t *)nn_test_device(ctx[k], hy, sizeof hy);
        ck_assert_int_eq(ops_fill(ctx[k], g, 0.0f, ne), 0);
        ck_assert_int_eq(nn_zero_grad(unet_net(m[k])), 0);
        ck_assert_int_eq(unet_forward(m[k], e, x, t, y, n, 1, key), 0);
        ck_assert_int_eq(unet_backward(m[k], g, d, n), 0);
        out[k] = malloc(ne * 4);
        dx[k] = malloc(ne * 4);
        ck_assert_int_eq(ops_download(ctx[k], out[k], e, ne * 4), 0);
        ck_assert_int_eq(ops_download(ctx[k], dx[k], g, ne * 4), 0);
        // a label past the null label fails inside a worker thread: the message still arrives
        hy[n - 1] = c.num_classes + 1;
        ck_assert_int_eq(ops_upload(ctx[k], y, hy, sizeof hy), 0);
        ck_assert_int_eq(unet_forward(m[k], e, x, t, y, n, 0, key), ERR_INPUT);
        ck_assert_msg(strstr(err_msg(), "labels must be 0..10"), "message: %s", err_msg());
        hy[n - 1] = (n - 1) % (c.num_classes + 1);
        eps[k] = e;
        ops_free(ctx[k], x), ops_free(ctx[k], t), ops_free(ctx[k], d), ops_free(ctx[k], g), ops_free(ctx[k], y);
    }
    ck_assert_msg(!memcmp(out[0], out[1], ne * 4), "3 replicas: the output differs from one thread's");
    nn_test_compare("replica dx", dx[1], dx[0], ne, 1e-5);
    nn_net *n1 = unet_net(m1), *n3 = unet_net(m3);
    float *g1 = malloc(n1->n_params * 4), *g3 = malloc(n1->n_params * 4);
    ck_assert_int_eq(ops_download(c1, g1, n1->grads, n1->n_params * 4), 0);
    ck_assert_int_eq(ops_download(c3, g3, n3->grads, n3->n_params * 4), 0);
    nn_test_compare("replica parameter gradients", g3, g1, n1->n_params, 1e-5);
    for (int k = 0; k < 2; k++) {
        ops_free(ctx[k], eps[k]);
        free(out[k]);
        free(dx[k]);
    }
    free(g1), free(g3), free(hx), free(ht), free(hd);
    unet_destroy(m1);
    unet_destroy(m3);
    ops_ctx_destroy(c1);
    ops_ctx_destroy(c3);
}
END_TEST

// Eval forwards on 3 threads run on replicas: the same logits and features, bit for bit, as one
// thread (the running statistics the replicas read are the model's own); a training forward and
// its backward still work after an eval one.
START_TEST(test_resnet_eval_replicas) {
    resnet_config c = resnet_config_default();
    c.width = 8;
    c.in_channels = 1;
    const int n = 7;
    size_t nx = (size_t)n * 32 * 32;
    float *hx = malloc(nx * 4);
    ref_fill_uniform(hx, nx, 9, -1, 1);
    float *lg[2], *ft[2];
    for (int k = 0; k < 2; k++) {
        ops_ctx *ctx = NULL;
        ops_options o = ops_options_default();
        o.threads = k ? 3 : 1;
        ck_assert_int_eq(ops_ctx_create(&ctx, OPS_DEV_CPU, &o), 0);
        resnet_model *m = NULL;
        ck_assert_int_eq(resnet_create(&m, ctx, &c, 8), 0);
        ck_assert_int_eq(nn_init_default(resnet_net(m), 3), 0);
        float *x = NULL;
        ck_assert_int_eq(ops_alloc(ctx, (void **)&x, nx * 4), 0);
        ck_assert_int_eq(ops_upload(ctx, x, hx, nx * 4), 0);
        const float *l = NULL, *f = NULL;
        // running statistics away from (0, 1), the same on both models (a training forward would
        // move them by slightly different amounts: sync BatchNorm rounds otherwise)
        nn_net *net = resnet_net(m);
        float *hb = malloc(net->n_buffers * 4);
        ref_fill_uniform(hb, net->n_buffers, 10, 0.5f, 1.5f);
        ck_assert_int_eq(ops_upload(ctx, net->buffers, hb, net->n_buffers * 4), 0);
        free(hb);
        ck_assert_int_eq(resnet_forward(m, x, n, 0, &l, &f), 0);
        lg[k] = malloc((size_t)n * 10 * 4);
        ft[k] = malloc((size_t)n * 64 * 4);
        ck_assert_int_eq(ops_download(ctx, lg[k], l, (size_t)n * 10 * 4), 0);
        ck_assert_int_eq(ops_download(ctx, ft[k], f, (size_t)n * 64 * 4), 0);
        ck_assert_int_eq(resnet_backward(m, NULL, l, n), ERR_USAGE); // an eval forward has no backward
        ck_assert_int_eq(resnet_forward(m, x, n, 1, &l, NULL), 0);
        ck_assert_int_eq(nn_zero_grad(resnet_net(m)), 0);
        ck_assert_int_eq(resnet_backward(m, NULL, l, n), 0);
        ops_free(ctx, x);
        resnet_destroy(m);
        ops_ctx_destroy(ctx);
    }
    ck_assert_msg(!memcmp(lg[0], lg[1], (size_t)n * 10 * 4), "3 threads: eval logits differ from one thread's");
    ck_assert_msg(!memcmp(ft[0], ft[1], (size_t)n * 64 * 4), "3 threads: eval features differ from one thread's");
    for (int k = 0; k < 2; k++) free(lg[k]), free(ft[k]);
    free(hx);
}
END_TEST

// One ResNet training step (forward, loss gradient, backward) with `threads` threads: logits,
// dx, parameter gradients and the running statistics after it, on the host.
typedef struct {
    float *logits, *dx, *grads, *buffers;
    size_t np, nb;
    size_t bn_off[64], bn_n[64]; // the BatchNorm weights' and biases' places in grads
    int nbn;
} rn_step_out;

static void rn_train_step(int threads, int n, const float *hx, const float *hdl, rn_step_out *o) {
    resnet_config c = resnet_config_default();
    c.width = 8;
    c.in_channels = 1;
    ops_ctx *ctx = NULL;
    ops_options op = ops_options_default();
    op.threads = threads;
    ck_assert_int_eq(ops_ctx_create(&ctx, OPS_DEV_CPU, &op), 0);
    resnet_model *m = NULL;
    ck_assert_int_eq(resnet_create(&m, ctx, &c, 8), 0);
    nn_net *net = resnet_net(m);
    ck_assert_int_eq(nn_init_default(net, 4), 0);
    size_t nx = (size_t)n * 32 * 32;
    float *x = nn_test_device(ctx, hx, nx * 4), *dl = nn_test_device(ctx, hdl, (size_t)n * 10 * 4);
    float *dx = nn_test_device(ctx, NULL, nx * 4);
    ck_assert_int_eq(ops_fill(ctx, dx, 0.0f, nx), 0);
    ck_assert_int_eq(nn_zero_grad(net), 0);
    const float *l = NULL;
    ck_assert_msg(resnet_forward(m, x, n, 1, &l, NULL) == 0, "%s", err_msg());
    ck_assert_msg(resnet_backward(m, dx, dl, n) == 0, "%s", err_msg());
    o->np = net->n_params, o->nb = net->n_buffers;
    o->nbn = 0;
    for (int i = 0; i < net->n_entries && o->nbn < 64; i++) {
        const nn_entry *e = &net->entries[i];
        if (e->kind == NN_KIND_PARAM && e->numel && (strstr(e->name, "bn") || strstr(e->name, "shortcut.1.")))
            o->bn_off[o->nbn] = e->offset, o->bn_n[o->nbn++] = e->numel;
    }
    ck_assert_int_eq(o->nbn, 2 * 20); // gamma and beta of the stem's, 16 blocks' and 3 shortcuts' BatchNorms
    o->logits = malloc((size_t)n * 10 * 4), o->dx = malloc(nx * 4);
    o->grads = malloc(o->np * 4), o->buffers = malloc(o->nb * 4);
    ck_assert_int_eq(ops_download(ctx, o->logits, l, (size_t)n * 10 * 4), 0);
    ck_assert_int_eq(ops_download(ctx, o->dx, dx, nx * 4), 0);
    ck_assert_int_eq(ops_download(ctx, o->grads, net->grads, o->np * 4), 0);
    ck_assert_int_eq(ops_download(ctx, o->buffers, net->buffers, o->nb * 4), 0);
    ops_free(ctx, x), ops_free(ctx, dl), ops_free(ctx, dx);
    resnet_destroy(m);
    ops_ctx_destroy(ctx);
}

static void rn_step_free(rn_step_out *o) { free(o->logits), free(o->dx), free(o->grads), free(o->buffers); }

// Training on 3 threads (replicas, sync BatchNorm over slices of 3, 2 and 2 images): the batch
// statistics, hence logits, gradients and running statistics, equal one thread's up to rounding;
// the same bits on a second run. The gradients of this random-init ReLU net meet kinks: rounding
// alone moved dx by 2.4e-3 (direct kernel against Winograd on one thread, image 5 at 6.7e-3,
// the rest through BatchNorm's coupling at 5e-4), so they are compared at 1e-2, each
// BatchNorm's gamma and beta gradients on their own (a replica's missing or doubled share would
// be off by a third or more).
START_TEST(test_resnet_train_replicas) {
    const int n = 7;
    size_t nx = (size_t)n * 32 * 32;
    float *hx = malloc(nx * 4), hdl[7 * 10];
    ref_fill_uniform(hx, nx, 11, -1, 1);
    ref_fill_uniform(hdl, sizeof hdl / 4, 12, -0.2f, 0.2f);
    rn_step_out one, rep, again;
    rn_train_step(1, n, hx, hdl, &one);
    rn_train_step(3, n, hx, hdl, &rep);
    rn_train_step(3, n, hx, hdl, &again);
    nn_test_compare("sync BatchNorm logits", rep.logits, one.logits, (size_t)n * 10, 1e-5);
    nn_test_compare("sync BatchNorm dx", rep.dx, one.dx, nx, 1e-2);
    nn_test_compare("sync BatchNorm parameter gradients", rep.grads, one.grads, one.np, 1e-2);
    for (int i = 0; i < one.nbn; i++)
        nn_test_compare("sync BatchNorm gamma/beta gradient", rep.grads + one.bn_off[i], one.grads + one.bn_off[i],
                        one.bn_n[i], 1e-2);
    nn_test_compare("sync BatchNorm running statistics", rep.buffers, one.buffers, one.nb, 1e-6);
    ck_assert_msg(!memcmp(rep.grads, again.grads, one.np * 4), "3 threads: gradients differ between two runs");
    ck_assert_msg(!memcmp(rep.buffers, again.buffers, one.nb * 4), "3 threads: running statistics differ between runs");
    ck_assert_msg(!memcmp(rep.dx, again.dx, nx * 4), "3 threads: dx differs between two runs");
    rn_step_free(&one), rn_step_free(&rep), rn_step_free(&again);
    free(hx);
}
END_TEST

// The replicas' barrier: replicas meet three times; replica `fail` (when >= 0) fails before the
// second meeting. Every replica returns (none waits forever) and the run reports the failure.
typedef struct {
    nn_rep_sync *sync;
    int fail, passed[4];
} barrier_case;

static int barrier_fn(void *arg, int r, int i0, int cnt) {
    barrier_case *b = arg;
    (void)i0, (void)cnt;
    for (int k = 0; k < 3; k++) {
        if (r == b->fail && k == 1) return err_set(ERR_INPUT, "replica %d: bad slice", r);
        ERR_TRY(nn_rep_sync_wait(b->sync));
        b->passed[r]++;
    }
    return 0;
}

START_TEST(test_rep_barrier) {
    nn_rep_sync sync;
    ck_assert_int_eq(nn_rep_sync_init(&sync), 0);
    barrier_case b = {.sync = &sync, .fail = -1};
    ck_assert_int_eq(nn_rep_run(4, 9, barrier_fn, &b, &sync), 0);
    for (int r = 0; r < 4; r++) ck_assert_int_eq(b.passed[r], 3);
    for (int fail = 0; fail < 4; fail += 3) {
        memset(b.passed, 0, sizeof b.passed);
        b.fail = fail;
        ck_assert_int_eq(nn_rep_run(4, 9, barrier_fn, &b, &sync), ERR_INPUT);
        ck_assert_msg(strstr(err_msg(), "bad slice"), "message: %s", err_msg());
        for (int r = 0; r < 4; r++) ck_assert_int_le(b.passed[r], 1);
    }
    b.fail = -1; // usable again after a failed run
    memset(b.passed, 0, sizeof b.passed);
    ck_assert_int_eq(nn_rep_run(3, 3, barrier_fn, &b, &sync), 0);
    for (int r = 0; r < 3; r++) ck_assert_int_eq(b.passed[r], 3);
    nn_rep_sync_free(&sync);
}
END_TEST

Suite *suite_nn_rep(void) {
    Suite *s = suite_create("nn_rep");
    TCase *tc = tcase_create("nn_rep");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_unet_replicas);
    tcase_add_test(tc, test_resnet_eval_replicas);
    tcase_add_test(tc, test_resnet_train_replicas);
    tcase_add_test(tc, test_rep_barrier);
    suite_add_tcase(s, tc);
    return s;
}
