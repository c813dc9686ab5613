// bench: a short training run of the UNet on one fixed batch (the loss must fall), and the
// throughput of the UNet and ResNet-18 forward and training step on one context.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tools/gpu_check_nn/gcn.h"

// Device buffers of one benchmark or training run (freed by gcn_bufs_free).
typedef struct {
    ops_ctx *ctx;
    float *x, *t, *eps, *target, *deps, *loss, *m, *v;
    int32_t *y;
} gcn_bufs;

static void gcn_bufs_free(gcn_bufs *b) {
    float *all[] = {b->x, b->t, b->eps, b->target, b->deps, b->loss, b->m, b->v, (float *)b->y};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) ops_free(b->ctx, all[i]);
}

static int gcn_alloc_rand(ops_ctx *ctx, float **out, size_t n, uint64_t *st, float lo, float hi) {
    float *h = malloc((n ? n : 1) * sizeof *h);
    if (!h) return err_set(ERR_NOMEM, "gpu-check-nn: out of memory for %zu floats", n);
    gcn_rand(st, h, n, lo, hi);
    *out = gcn_upload(ctx, h, n);
    free(h);
    return *out ? 0 : (err_last() < 0 ? err_last() : ERR_DEVICE);
}

// Inputs of a UNet step: x, t, y (labels cycling through 0..K), eps/target/deps, loss, AdamW m, v.
static int gcn_unet_bufs(gcn_bufs *b, ops_ctx *ctx, const unet_config *c, int n, size_t n_params, uint64_t seed) {
    size_t nx = (size_t)n * c->in_channels * c->image_size * c->image_size;
    size_t ne = (size_t)n * c->out_ch * c->image_size * c->image_size;
    uint64_t st = seed;
    b->ctx = ctx;
    ERR_TRY(gcn_alloc_rand(ctx, &b->x, nx, &st, -1.f, 1.f));
    ERR_TRY(gcn_alloc_rand(ctx, &b->t, (size_t)n, &st, 0.f, 999.f));
    ERR_TRY(gcn_alloc_rand(ctx, &b->eps, ne, &st, -1.f, 1.f));
    ERR_TRY(gcn_alloc_rand(ctx, &b->target, ne, &st, -1.f, 1.f));
    ERR_TRY(gcn_alloc_rand(ctx, &b->deps, ne, &st, -1.f, 1.f));
    ERR_TRY(gcn_alloc_rand(ctx, &b->loss, 1, &st, 0.f, 0.f));
    ERR_TRY(ops_alloc(ctx, (void **)&b->m, n_params * sizeof(float)));
    ERR_TRY(ops_alloc(ctx, (void **)&b->v, n_params * sizeof(float)));
    ERR_TRY(ops_fill(ctx, b->m, 0.f, n_params));
    ERR_TRY(ops_fill(ctx, b->v, 0.f, n_params));
    int32_t *hy = malloc((size_t)n * sizeof *hy);
    if (!hy) return err_set(ERR_NOMEM, "gpu-check-nn: out of memory");
    for (int i = 0; i < n; i++) hy[i] = i % (c->num_classes + 1);
    int rc = ops_alloc(ctx, (void **)&b->y, (size_t)n * sizeof *hy);
    if (rc == 0) rc = ops_upload(ctx, b->y, hy, (size_t)n * sizeof *hy);
    free(hy);
    return rc;
}

// One UNet training step: forward (dropout), MSE against target, backward, AdamW. *loss on host
// when loss_out is not NULL.
static int gcn_unet_step(unet_model *m, gcn_bufs *b, int n, int step, float *loss_out) {
    nn_net *net = unet_net(m);
    const unet_config *c = unet_cfg(m);
    int per = c->out_ch * c->image_size * c->image_size;
    philox_key key = {(uint32_t)step, 99u, 6u, 0u};
    ERR_TRY(unet_forward(m, b->eps, b->x, b->t, b->y, n, 1, key));
    ERR_TRY(ops_mse_sum_loss(b->ctx, b->loss, b->deps, b->eps, b->target, n, per));
    ERR_TRY(nn_zero_grad(net));
    ERR_TRY(unet_backward(m, NULL, b->deps, n));
    ERR_TRY(ops_adamw(b->ctx, net->params, net->grads, b->m, b->v, net->n_params, 2e-4f * 5, 0.9f, 0.999f, 1e-8f, 0.f,
                      step));
    if (loss_out) ERR_TRY(ops_download(b->ctx, loss_out, b->loss, sizeof *loss_out));
    return 0;
}

int gcn_train_short(gcn_opts *o, ops_ctx *ctx) {
    unet_config c = gcn_unet_small();
    int n = 8, rc = 0;
    unet_model *m = NULL;
    gcn_bufs b = {0};
    float first = 0.f, last = 0.f;
    ERR_GOTO(rc, unet_create(&m, ctx, &c, n));
    ERR_GOTO(rc, nn_init_default(unet_net(m), o->seed));
    ERR_GOTO(rc, gcn_unet_bufs(&b, ctx, &c, n, unet_net(m)->n_params, o->seed));
    double t0 = gcn_now();
    for (int s = 1; s <= o->steps; s++)
        ERR_GOTO(rc, gcn_unet_step(m, &b, n, s, s == 1 ? &first : (s == o->steps ? &last : NULL)));
    ERR_GOTO(rc, ops_sync(ctx));
    double dt = gcn_now() - t0;
    char note[128];
    snprintf(note, sizeof note, "(loss %.4f -> %.4f in %d steps, %.2f s)", (double)first, (double)last, o->steps, dt);
    // the fit of one fixed batch must at least halve the loss
    gcn_row(o, "unet-s", "short training run", last / (first > 0 ? first : 1.f), 0.5, note);
fail:
    gcn_bufs_free(&b);
    unet_destroy(m);
    return rc;
}

// --- throughput ---------------------------------------------------------------------------------

static void gcn_report(const char *model, const char *mode, int n, int iters, double dt) {
    printf("bench %-8s %-7s batch %4d: %10.1f img/s  (%d iterations, %.3f s)\n", model, mode, n, n * iters / dt, iters,
           dt);
    fflush(stdout);
}

static int gcn_bench_unet(gcn_opts *o, ops_ctx *ctx) {
    unet_config c = o->paper ? unet_config_cifar10() : gcn_unet_small();
    int n = o->batch, rc = 0;
    unet_model *m = NULL;
    gcn_bufs b = {0};
    const char *name = o->paper ? "unet" : "unet-s";
    ERR_GOTO(rc, unet_create(&m, ctx, &c, n));
    ERR_GOTO(rc, nn_init_default(unet_net(m), o->seed));
    ERR_GOTO(rc, gcn_unet_bufs(&b, ctx, &c, n, unet_net(m)->n_params, o->seed));
    philox_key key = {1u, 2u, 3u, 4u};
    for (int i = 0; i < 3; i++) ERR_GOTO(rc, unet_forward(m, b.eps, b.x, b.t, b.y, n, 0, key));
    ERR_GOTO(rc, ops_sync(ctx));
    double t0 = gcn_now();
    for (int i = 0; i < o->iters; i++) ERR_GOTO(rc, unet_forward(m, b.eps, b.x, b.t, b.y, n, 0, key));
    ERR_GOTO(rc, ops_sync(ctx));
    gcn_report(name, "forward", n, o->iters, gcn_now() - t0);
    for (int i = 1; i <= 3; i++) ERR_GOTO(rc, gcn_unet_step(m, &b, n, i, NULL));
    ERR_GOTO(rc, ops_sync(ctx));
    t0 = gcn_now();
    for (int i = 0; i < o->iters; i++) ERR_GOTO(rc, gcn_unet_step(m, &b, n, 4 + i, NULL));
    ERR_GOTO(rc, ops_sync(ctx));
    gcn_report(name, "train", n, o->iters, gcn_now() - t0);
fail:
    gcn_bufs_free(&b);
    unet_destroy(m);
    return rc;
}

static int gcn_bench_resnet(gcn_opts *o, ops_ctx *ctx) {
    resnet_config c = resnet_config_default();
    int n = o->batch, rc = 0;
    resnet_model *m = NULL;
    float *x = NULL, *dl = NULL, *loss = NULL, *buf = NULL;
    int32_t *lab = NULL;
    const float *logits;
    uint64_t st = o->seed;
    ERR_GOTO(rc, resnet_create(&m, ctx, &c, n));
    nn_net *net = resnet_net(m);
    ERR_GOTO(rc, nn_init_default(net, o->seed));
    ERR_GOTO(rc, gcn_alloc_rand(ctx, &x, (size_t)n * c.in_channels * c.image_size * c.image_size, &st, -2.f, 2.f));
    ERR_GOTO(rc, gcn_alloc_rand(ctx, &dl, (size_t)n * c.num_classes, &st, 0.f, 0.f));
    ERR_GOTO(rc, gcn_alloc_rand(ctx, &loss, 1, &st, 0.f, 0.f));
    ERR_GOTO(rc, gcn_alloc_rand(ctx, &buf, net->n_params, &st, 0.f, 0.f));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&lab, (size_t)n * sizeof *lab));
    {
        int32_t *hl = malloc((size_t)n * sizeof *hl);
        ERR_GOTO_IF(rc, !hl, ERR_NOMEM, "gpu-check-nn: out of memory");
        for (int i = 0; i < n; i++) hl[i] = i % c.num_classes;
        rc = ops_upload(ctx, lab, hl, (size_t)n * sizeof *hl);
        free(hl);
        if (rc < 0) goto fail;
    }
    for (int i = 0; i < 3; i++) ERR_GOTO(rc, resnet_forward(m, x, n, 0, &logits, NULL));
    ERR_GOTO(rc, ops_sync(ctx));
    double t0 = gcn_now();
    for (int i = 0; i < o->iters; i++) ERR_GOTO(rc, resnet_forward(m, x, n, 0, &logits, NULL));
    ERR_GOTO(rc, ops_sync(ctx));
    gcn_report("resnet18", "forward", n, o->iters, gcn_now() - t0);
    for (int i = 0; i < 3 + o->iters; i++) {
        if (i == 3) {
            ERR_GOTO(rc, ops_sync(ctx));
            t0 = gcn_now();
        }
        ERR_GOTO(rc, resnet_forward(m, x, n, 1, &logits, NULL));
        ERR_GOTO(rc, ops_softmax_xent_loss(ctx, loss, dl, logits, lab, n, c.num_classes));
        ERR_GOTO(rc, nn_zero_grad(net));
        ERR_GOTO(rc, resnet_backward(m, NULL, dl, n));
        ERR_GOTO(rc, ops_sgd(ctx, net->params, net->grads, buf, net->n_params, 0.1f, 0.9f, 5e-4f, 1));
    }
    ERR_GOTO(rc, ops_sync(ctx));
    gcn_report("resnet18", "train", n, o->iters, gcn_now() - t0);
fail:
    if (x) ops_free(ctx, x);
    if (dl) ops_free(ctx, dl);
    if (loss) ops_free(ctx, loss);
    if (buf) ops_free(ctx, buf);
    if (lab) ops_free(ctx, lab);
    resnet_destroy(m);
    return rc;
}

int gcn_bench(gcn_opts *o, ops_ctx *ctx, const char *model) {
    if (!model || !strcmp(model, "unet") || !strcmp(model, "all")) ERR_TRY(gcn_bench_unet(o, ctx));
    if (!model || !strcmp(model, "resnet18") || !strcmp(model, "all")) ERR_TRY(gcn_bench_resnet(o, ctx));
    return 0;
}
