// tr_classifier: the ResNet-18 discriminator training loop (METHOD.md section 5, tr.h): SGD
// with Nesterov momentum and per-step cosine annealing, random crop with zero padding and
// flips, BatchNorm in training mode, validation accuracy after every epoch and the best
// epoch's weights kept; and the accuracy of a checkpoint on a test store.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/log.h"
#include "common/nn/optim.h"
#include "common/nn/resnet.h"
#include "common/rng.h"
#include "common/train/tr.h"

typedef struct {
    const tr_env *env;
    ops_ctx *ctx;
    resnet_config rc;
    int B, K, P, HW, crop_pad, flip, epochs;
    long spe, total, log_every;
    double minutes, val_fraction;
    uint64_t seed;
    optim_sgd_config oc;
    resnet_model *m;
    nn_net *net;
    optim *opt;
    uint32_t *train_idx, *val_idx; // indices into the training store (val_idx NULL with --val)
    int64_t n_train, n_val;
    const tr_images *val;          // where validation images come from
    float *d_x, *d_dlogits, *d_loss, *d_best_p, *d_best_b;
    int32_t *d_y;
    float *h_x, *h_logits;
    int32_t *h_y;
    uint8_t *h_u8;
    int have_best, best_epoch;
    double best_acc;
    tr_order order;
    tr_log log;
} tr_cls;

static int tr_cls_config(tr_cls *c, const cfg *root) {
    int64_t l;
    double x;
    bool b;
    const cfg *node = NULL;
    ERR_TRY(cfg_subtree(root, "resnet", &node));
    ERR_TRY(resnet_config_from_cfg(node, &c->rc));
    c->K = c->rc.num_classes;
    ERR_TRY(cfg_get_int(root, "train_classifier.batch", &c->B));
    ERR_TRY(cfg_get_int(root, "train_classifier.epochs", &c->epochs));
    ERR_TRY(cfg_get_int(root, "train_classifier.crop_pad", &c->crop_pad));
    ERR_TRY(cfg_get_bool(root, "train_classifier.flip", &b));
    c->flip = b;
    ERR_TRY(cfg_get_float(root, "train_classifier.val_fraction", &c->val_fraction));
    ERR_TRY(cfg_get_float(root, "train_classifier.minutes", &c->minutes));
    ERR_TRY(cfg_get_i64(root, "train_classifier.log_every", &l));
    c->log_every = (long)l;
    ERR_TRY(cfg_get_i64(root, "train_classifier.seed", &l));
    c->seed = (uint64_t)l;
    c->oc = optim_sgd_default();
    ERR_TRY(cfg_get_float(root, "train_classifier.lr", &x));
    c->oc.lr = (float)x;
    ERR_TRY(cfg_get_float(root, "train_classifier.lr_min", &x));
    c->oc.lr_floor = (float)x;
    ERR_TRY(cfg_get_float(root, "train_classifier.momentum", &x));
    c->oc.momentum = (float)x;
    ERR_TRY(cfg_get_float(root, "train_classifier.weight_decay", &x));
    c->oc.weight_decay = (float)x;
    ERR_TRY(cfg_get_bool(root, "train_classifier.nesterov", &b));
    c->oc.nesterov = b;
    return 0;
}

#define TR_ALLOC(ptr, bytes) ERR_TRY(ops_alloc(c->ctx, (void **)&(ptr), (bytes)))

// The train/validation split: --val, else the held-out val_fraction by a seeded permutation.
static int tr_cls_split(tr_cls *c) {
    const tr_images *tr = c->env->train;
    uint32_t *perm = malloc(sizeof *perm * (size_t)tr->n);
    ERR_IF(!perm, ERR_NOMEM, "out of memory");
    if (c->env->val) {
        for (int64_t i = 0; i < tr->n; i++) perm[i] = (uint32_t)i;
        c->n_val = c->env->val->n;
        c->n_train = tr->n;
        c->train_idx = perm;
        c->val = c->env->val;
        return 0;
    }
    rng_permutation(rng_stream(c->seed, RNG_SPLIT, 0, 0, 0), perm, (uint32_t)tr->n);
    c->n_val = llround((double)tr->n * c->val_fraction);
    if (c->val_fraction > 0 && c->n_val == 0) c->n_val = 1;
    c->n_train = tr->n - c->n_val;
    c->val_idx = perm;
    c->train_idx = perm + c->n_val;
    c->val = tr;
    return 0;
}

static int tr_cls_setup(tr_cls *c) {
    const tr_images *tr = c->env->train;
    ERR_TRY(tr_cls_config(c, c->env->root));
    c->rc.image_size = tr->h; // global pooling: any square size >= 8
    ERR_IF(c->rc.in_channels != tr->c || tr->h != tr->w || tr->h < 8, ERR_CONFIG,
           "resnet.in_channels %d does not match the %d x %d x %d images of the training store", c->rc.in_channels,
           tr->c, tr->h, tr->w);
    if (c->env->val)
        ERR_IF(c->env->val->c != tr->c || c->env->val->h != tr->h || c->env->val->w != tr->w, ERR_INPUT,
               "the --val images (%d x %d x %d) differ in shape from the training images (%d x %d x %d)",
               c->env->val->c, c->env->val->h, c->env->val->w, tr->c, tr->h, tr->w);
    c->HW = tr->h * tr->w;
    c->P = tr->c * c->HW;
    ERR_TRY(tr_cls_split(c));
    c->spe = (long)(c->n_train / c->B);
    ERR_IF(c->spe < 1, ERR_CONFIG, "train_classifier.batch %d exceeds the %lld training images", c->B,
           (long long)c->n_train);
    c->total = c->spe * c->epochs;
    c->oc.total_steps = c->total;
    ERR_TRY(resnet_create(&c->m, c->ctx, &c->rc, c->B));
    c->net = resnet_net(c->m);
    ERR_TRY(optim_sgd_create(&c->opt, c->ctx, c->net->n_params, &c->oc));
    TR_ALLOC(c->d_x, sizeof(float) * (size_t)c->B * c->P);
    TR_ALLOC(c->d_dlogits, sizeof(float) * (size_t)c->B * c->K);
    TR_ALLOC(c->d_loss, sizeof(float) * 4);
    TR_ALLOC(c->d_y, sizeof(int32_t) * c->B);
    TR_ALLOC(c->d_best_p, sizeof(float) * c->net->n_params);
    TR_ALLOC(c->d_best_b, sizeof(float) * (c->net->n_buffers ? c->net->n_buffers : 1));
    c->h_x = malloc(sizeof(float) * (size_t)c->B * c->P);
    c->h_logits = malloc(sizeof(float) * (size_t)c->B * c->K);
    c->h_y = malloc(sizeof(int32_t) * c->B);
    c->h_u8 = malloc((size_t)c->P);
    ERR_IF(!c->h_x || !c->h_logits || !c->h_y || !c->h_u8, ERR_NOMEM, "out of memory");
    ERR_TRY(tr_order_init(&c->order, c->seed, (uint32_t)c->n_train));
    tr_log_init(&c->log, TR_LOG_WIDTH);
    c->best_acc = -1;
    c->best_epoch = -1;
    return 0;
}

static void tr_cls_free(tr_cls *c) {
    float *bufs[] = {c->d_x, c->d_dlogits, c->d_loss, c->d_best_p, c->d_best_b, (float *)c->d_y};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) ops_free(c->ctx, bufs[i]);
    optim_destroy(c->opt);
    resnet_destroy(c->m);
    free(c->env && c->env->val ? c->train_idx : c->val_idx);
    free(c->h_x);
    free(c->h_logits);
    free(c->h_y);
    free(c->h_u8);
    tr_order_free(&c->order);
    tr_log_free(&c->log);
}

// One optimiser step (0-based `step`).
static int tr_cls_step(tr_cls *c, long step, float *loss, float *gnorm) {
    const tr_images *tr = c->env->train;
    long e = step / c->spe, p = step % c->spe;
    philox_key kc = rng_stream(c->seed, RNG_CROP, (uint64_t)e, 0, 0), kf = rng_stream(c->seed, RNG_FLIP, (uint64_t)e, 0, 0);
    int cp = c->crop_pad;
    for (int i = 0; i < c->B; i++) {
        uint32_t idx = c->train_idx[tr_order_at(&c->order, (uint64_t)e * c->n_train + (uint64_t)p * c->B + i)];
        int flip = c->flip && rng_uniform(kf, idx) < 0.5;
        int dy = cp > 0 ? (int)rng_randint(kc, 2 * (uint64_t)idx, (uint32_t)(2 * cp + 1)) : 0;
        int dx = cp > 0 ? (int)rng_randint(kc, 2 * (uint64_t)idx + 1, (uint32_t)(2 * cp + 1)) : 0;
        tr_augment(c->h_u8, tr->img + (size_t)idx * c->P, tr->c, tr->h, tr->w, flip, cp, dy, dx);
        tr_normalise(c->h_x + (size_t)i * c->P, c->h_u8, tr->c, c->HW, tr->mean, tr->std);
        c->h_y[i] = tr->label[idx];
    }
    const float *logits = NULL;
    ERR_TRY(ops_upload(c->ctx, c->d_x, c->h_x, sizeof(float) * (size_t)c->B * c->P));
    ERR_TRY(ops_upload(c->ctx, c->d_y, c->h_y, sizeof(int32_t) * c->B));
    ERR_TRY(resnet_forward(c->m, c->d_x, c->B, 1, &logits, NULL));
    ERR_TRY(ops_softmax_xent_loss(c->ctx, c->d_loss, c->d_dlogits, logits, c->d_y, c->B, c->K));
    ERR_TRY(nn_zero_grad(c->net));
    ERR_TRY(resnet_backward(c->m, NULL, c->d_dlogits, c->B));
    ERR_TRY(optim_step(c->opt, c->net->params, c->net->grads, gnorm));
    return ops_download(c->ctx, loss, c->d_loss, sizeof(float));
}

// Accuracy and mean loss of model m (eval mode) on images idx[0..n) of `set` (idx NULL: 0..n-1),
// normalised with mean/std. Uses the caller's buffers (batch B).
static int tr_cls_accuracy(resnet_model *m, ops_ctx *ctx, const tr_images *set, const uint32_t *idx, int64_t n,
                           int B, const double *mean, const double *std, float *d_x, int32_t *d_y, float *d_dl,
                           float *d_loss, float *h_x, int32_t *h_y, float *h_logits, double *acc, double *mloss) {
    int K = resnet_cfg(m)->num_classes, P = set->c * set->h * set->w;
    int64_t correct = 0;
    double lsum = 0;
    for (int64_t j0 = 0; j0 < n; j0 += B) {
        int nb = n - j0 < B ? (int)(n - j0) : B;
        for (int i = 0; i < nb; i++) {
            int64_t k = idx ? idx[j0 + i] : j0 + i;
            tr_normalise(h_x + (size_t)i * P, set->img + (size_t)k * P, set->c, set->h * set->w, mean, std);
            h_y[i] = set->label[k];
        }
        const float *logits = NULL;
        float l = 0;
        ERR_TRY(ops_upload(ctx, d_x, h_x, sizeof(float) * (size_t)nb * P));
        ERR_TRY(ops_upload(ctx, d_y, h_y, sizeof(int32_t) * nb));
        ERR_TRY(resnet_forward(m, d_x, nb, 0, &logits, NULL));
        ERR_TRY(ops_softmax_xent_loss(ctx, d_loss, d_dl, logits, d_y, nb, K));
        ERR_TRY(ops_download(ctx, &l, d_loss, sizeof(float)));
        ERR_TRY(ops_download(ctx, h_logits, logits, sizeof(float) * (size_t)nb * K));
        lsum += (double)l * nb;
        for (int i = 0; i < nb; i++) {
            int best = 0;
            for (int k = 1; k < K; k++)
                if (h_logits[i * K + k] > h_logits[i * K + best]) best = k;
            correct += best == h_y[i];
        }
    }
    *acc = n > 0 ? (double)correct / (double)n : 0;
    *mloss = n > 0 ? lsum / (double)n : 0;
    return 0;
}

static int tr_cls_checkpoint(tr_cls *c, long step, const float *val_row) {
    ts_store *s = c->env->out;
    size_t n = 0;
    float *st = optim_state(c->opt, &n);
    int rc = 0;
    ERR_TRY(ts_begin_write(s));
    ERR_GOTO(rc, tr_ckpt_put(s, "param", NULL, c->net, NN_KIND_PARAM, c->net->params));
    ERR_GOTO(rc, tr_ckpt_put(s, "buffer", NULL, c->net, NN_KIND_BUFFER, c->net->buffers));
    ERR_GOTO(rc, tr_ckpt_put(s, "optim", "momentum_buffer.", c->net, NN_KIND_PARAM, st));
    if (c->have_best) {
        ERR_GOTO(rc, tr_ckpt_put(s, "best_param", NULL, c->net, NN_KIND_PARAM, c->d_best_p));
        ERR_GOTO(rc, tr_ckpt_put(s, "best_buffer", NULL, c->net, NN_KIND_BUFFER, c->d_best_b));
        char buf[40];
        snprintf(buf, sizeof buf, "%.17g", c->best_acc);
        ERR_GOTO(rc, ts_meta_put(s, "best_acc", buf));
        ERR_GOTO(rc, tr_meta_put_i64(s, "best_epoch", c->best_epoch));
    }
    ERR_GOTO(rc, tr_log_flush(&c->log, s, "log"));
    if (val_row) ERR_GOTO(rc, tr_put_vector(s, "val_acc", (uint64_t)val_row[0], val_row, 3));
    ERR_GOTO(rc, tr_ckpt_put_meta(s, c->env, "classifier", step, step / c->spe));
    ERR_GOTO(rc, ts_commit(s));
    return 0;
fail:
    ts_abort(s);
    return rc;
}

static int tr_cls_start(tr_cls *c, long *step) {
    ts_store *s = c->env->out;
    int rc = tr_ckpt_step(c->env, c->total, step);
    if (rc == 0) return nn_init_default(c->net, c->seed);
    ERR_TRY(rc);
    size_t n = 0;
    ERR_TRY(tr_ckpt_get(s, "param", NULL, c->net, NN_KIND_PARAM, c->net->params));
    ERR_TRY(tr_ckpt_get(s, "buffer", NULL, c->net, NN_KIND_BUFFER, c->net->buffers));
    ERR_TRY(tr_ckpt_get(s, "optim", "momentum_buffer.", c->net, NN_KIND_PARAM, optim_state(c->opt, &n)));
    int64_t be = 0;
    rc = tr_meta_get_i64(s, "best_epoch", &be);
    if (rc >= 0) {
        char *text = NULL;
        ERR_TRY(ts_meta_get(s, "best_acc", &text));
        c->best_acc = strtod(text, NULL);
        free(text);
        c->best_epoch = (int)be;
        c->have_best = 1;
        ERR_TRY(tr_ckpt_get(s, "best_param", NULL, c->net, NN_KIND_PARAM, c->d_best_p));
        ERR_TRY(tr_ckpt_get(s, "best_buffer", NULL, c->net, NN_KIND_BUFFER, c->d_best_b));
    } else if (rc != ERR_NOTFOUND) {
        return rc;
    }
    optim_set_steps(c->opt, *step);
    log_info("%s: resuming at step %ld of %ld (epoch %ld)", c->env->out_path, *step, c->total, *step / c->spe);
    return 0;
}

// End of an epoch: validation accuracy, best weights. row = [epoch, accuracy, loss].
static int tr_cls_epoch_end(tr_cls *c, long epoch, float *row) {
    double acc = 0, vl = 0;
    if (c->n_val > 0)
        ERR_TRY(tr_cls_accuracy(c->m, c->ctx, c->val, c->val_idx, c->n_val, c->B, c->env->train->mean,
                                c->env->train->std, c->d_x, c->d_y, c->d_dlogits, c->d_loss, c->h_x, c->h_y,
                                c->h_logits, &acc, &vl));
    row[0] = (float)epoch;
    row[1] = (float)acc;
    row[2] = (float)vl;
    if (c->n_val > 0 && acc > c->best_acc) {
        c->best_acc = acc;
        c->best_epoch = (int)epoch;
        c->have_best = 1;
        ERR_TRY(ops_copy(c->ctx, c->d_best_p, c->net->params, sizeof(float) * c->net->n_params));
        if (c->net->n_buffers)
            ERR_TRY(ops_copy(c->ctx, c->d_best_b, c->net->buffers, sizeof(float) * c->net->n_buffers));
    }
    log_info("epoch %ld: validation accuracy %.2f%% (loss %.4f) on %lld images; best %.2f%% (epoch %d)", epoch,
             100 * acc, vl, (long long)c->n_val, 100 * (c->best_acc > 0 ? c->best_acc : 0), c->best_epoch);
    return 0;
}

int tr_classifier_run(const tr_env *env, tr_result *res) {
    tr_cls c;
    memset(&c, 0, sizeof c);
    memset(res, 0, sizeof *res);
    c.env = env;
    c.ctx = env->ctx;
    int rc = 0;
    long step = 0;
    tr_meter m = {.out_path = env->out_path, .section = "train_classifier", .loss_digits = 3, .log = &c.log,
                  .t0 = tr_now()};
    ERR_GOTO(rc, tr_cls_setup(&c));
    ERR_GOTO(rc, tr_cls_start(&c, &step));
    log_info("%s: ResNet-18 of %zu parameters, %lld training / %lld validation images, batch %d, %d epochs of %ld steps",
             env->out_path, c.net->n_params, (long long)c.n_train, (long long)c.n_val, c.B, c.epochs, c.spe);
    m.batch = c.B;
    m.log_every = c.log_every;
    m.minutes = c.minutes;
    tr_meter_begin(&m, step, c.total);
    while (step < c.total) {
        float loss = 0, gnorm = 0, row[3];
        double lr = optim_lr(c.opt, step);
        int budget = 0;
        ERR_GOTO(rc, tr_cls_step(&c, step, &loss, &gnorm));
        step++;
        ERR_GOTO(rc, tr_meter_step(&m, step, loss, lr, gnorm, &budget));
        int stop = cli_interrupted(), epoch_end = step % c.spe == 0;
        if (epoch_end) ERR_GOTO(rc, tr_cls_epoch_end(&c, step / c.spe - 1, row));
        if (epoch_end || stop || budget) ERR_GOTO(rc, tr_cls_checkpoint(&c, step, epoch_end ? row : NULL));
        if (stop) ERR_GOTO(rc, cli_check_interrupt());
        if (budget) break;
    }
    tr_meter_end(&m, step, c.total, res);
    res->val_metric = c.best_acc;
    res->best_epoch = c.best_epoch;
fail:
    prog_end();
    tr_cls_free(&c);
    return rc;
}

int tr_classifier_eval(ts_store *ckpt, ops_ctx *ctx, const tr_images *test, int batch, double *acc) {
    int rc = 0;
    char *text = NULL;
    cfg *root = NULL;
    const cfg *node = NULL;
    resnet_config rcfg;
    resnet_model *m = NULL;
    double mean[4], std[4], loss = 0;
    float *d_x = NULL, *d_dl = NULL, *d_loss = NULL, *h_x = NULL, *h_logits = NULL;
    int32_t *d_y = NULL, *h_y = NULL;
    ERR_GOTO(rc, ts_meta_get(ckpt, "config", &text));
    ERR_GOTO(rc, cfg_parse_text(&root, text, strlen(text), "checkpoint meta config"));
    ERR_GOTO(rc, cfg_subtree(root, "resnet", &node));
    ERR_GOTO(rc, resnet_config_from_cfg(node, &rcfg));
    rcfg.image_size = test->h; // as in training: the network takes the images' size
    ERR_GOTO_IF(rc, rcfg.in_channels != test->c || test->h != test->w, ERR_INPUT,
                "test images %d x %d x %d do not fit the classifier (%d channels)", test->c, test->h, test->w,
                rcfg.in_channels);
    ERR_GOTO(rc, tr_meta_get_doubles(ckpt, "mean", mean, test->c));
    ERR_GOTO(rc, tr_meta_get_doubles(ckpt, "std", std, test->c));
    ERR_GOTO(rc, resnet_create(&m, ctx, &rcfg, batch));
    nn_net *net = resnet_net(m);
    const char *tp = ts_table_exists(ckpt, "best_param") == 1 ? "best_param" : "param";
    const char *tb = ts_table_exists(ckpt, "best_buffer") == 1 ? "best_buffer" : "buffer";
    ERR_GOTO(rc, tr_ckpt_get(ckpt, tp, NULL, net, NN_KIND_PARAM, net->params));
    ERR_GOTO(rc, tr_ckpt_get(ckpt, tb, NULL, net, NN_KIND_BUFFER, net->buffers));
    int P = test->c * test->h * test->w, K = rcfg.num_classes;
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&d_x, sizeof(float) * (size_t)batch * P));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&d_dl, sizeof(float) * (size_t)batch * K));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&d_loss, sizeof(float) * 4));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&d_y, sizeof(int32_t) * batch));
    h_x = malloc(sizeof(float) * (size_t)batch * P);
    h_logits = malloc(sizeof(float) * (size_t)batch * K);
    h_y = malloc(sizeof(int32_t) * batch);
    ERR_GOTO_IF(rc, !h_x || !h_logits || !h_y, ERR_NOMEM, "out of memory");
    ERR_GOTO(rc, tr_cls_accuracy(m, ctx, test, NULL, test->n, batch, mean, std, d_x, d_y, d_dl, d_loss, h_x, h_y,
                                 h_logits, acc, &loss));
fail:
    if (d_x) ops_free(ctx, d_x);
    if (d_dl) ops_free(ctx, d_dl);
    if (d_loss) ops_free(ctx, d_loss);
    if (d_y) ops_free(ctx, d_y);
    free(h_x);
    free(h_logits);
    free(h_y);
    resnet_destroy(m);
    cfg_free(root);
    free(text);
    return rc;
}
