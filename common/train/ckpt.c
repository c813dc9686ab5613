// ckpt: loading the networks of finished checkpoint stores for detection (ckpt.h): the
// classifier with its best weights and input normalisation, the denoiser with its EMA weights
// and noise schedule.
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/err.h"
#include "common/stage.h"
#include "common/train/ckpt.h"
#include "common/train/tr.h"

// --- the common part: open read only, check model and completion, key and config --------------

// Opens `path` read only into *s, checks meta model == `model` and complete=true, copies the key
// and parses meta config into *root (caller frees).
static int ckpt_open_store(ts_store **s, const char *path, const char *model, char key[HASH_HEX_LEN + 1],
                           cfg **root) {
    char *text = NULL;
    int rc = 0;
    ERR_TRY(ts_open(s, path, TS_RDONLY));
    rc = ts_meta_get(*s, "model", &text);
    if (rc == ERR_NOTFOUND) {
        rc = err_set(ERR_INPUT, "%s: not a %s checkpoint (no meta model)", path, model);
        goto fail;
    }
    ERR_GOTO(rc, rc);
    ERR_GOTO_IF(rc, strcmp(text, model) != 0, ERR_INPUT, "%s: not a %s checkpoint (model=%s)", path, model, text);
    free(text);
    text = NULL;
    rc = stage_is_complete(*s);
    ERR_GOTO(rc, rc);
    ERR_GOTO_IF(rc, rc == 0, ERR_INPUT, "%s: incomplete checkpoint (train has not finished: rerun train)", path);
    rc = ts_meta_get(*s, "key", &text);
    if (rc == ERR_NOTFOUND) rc = err_set(ERR_CORRUPT, "%s: checkpoint without meta key", path);
    ERR_GOTO(rc, rc);
    ERR_GOTO_IF(rc, strlen(text) != HASH_HEX_LEN, ERR_CORRUPT, "%s: meta key '%s' is not a store key", path, text);
    memcpy(key, text, HASH_HEX_LEN + 1);
    free(text);
    text = NULL;
    rc = ts_meta_get(*s, "config", &text);
    if (rc == ERR_NOTFOUND) rc = err_set(ERR_CORRUPT, "%s: checkpoint without meta config", path);
    ERR_GOTO(rc, rc);
    rc = cfg_parse_text(root, text, strlen(text), "checkpoint meta config");
    if (rc < 0) {
        err_prefix(rc, "%s: ", path);
        goto fail;
    }
    free(text);
    return 0;
fail:
    free(text);
    ts_close(*s);
    *s = NULL;
    return rc;
}

// --- classifier ---------------------------------------------------------------------------------

int ckpt_classifier_open(ckpt_classifier *c, const char *path, ops_ctx *ctx, int channels, int image_size,
                         int max_batch) {
    memset(c, 0, sizeof *c);
    cfg *root = NULL;
    const cfg *node = NULL;
    int rc = 0;
    ERR_IF(max_batch < 1, ERR_USAGE, "%s: max_batch %d < 1", path, max_batch);
    ERR_TRY(ckpt_open_store(&c->store, path, "classifier", c->key, &root));
    ERR_GOTO(rc, cfg_subtree(root, "resnet", &node));
    ERR_GOTO(rc, resnet_config_from_cfg(node, &c->cfg));
    ERR_GOTO_IF(rc, c->cfg.in_channels != channels, ERR_INPUT,
                "%s: the classifier takes %d-channel images, the images have %d channels", path, c->cfg.in_channels,
                channels);
    ERR_GOTO_IF(rc, image_size < 8, ERR_INPUT, "%s: images of %d x %d pixels are too small for the classifier (>= 8)",
                path, image_size, image_size);
    c->cfg.image_size = image_size; // as in training: the network takes the images' size
    ERR_GOTO(rc, tr_meta_get_doubles(c->store, "mean", c->mean, channels));
    ERR_GOTO(rc, tr_meta_get_doubles(c->store, "std", c->std, channels));
    for (int ch = 0; ch < channels; ch++)
        ERR_GOTO_IF(rc, !(c->std[ch] > 0), ERR_CORRUPT, "%s: meta std[%d] = %g is not positive", path, ch, c->std[ch]);
    ERR_GOTO(rc, resnet_create(&c->model, ctx, &c->cfg, max_batch));
    c->max_batch = max_batch;
    nn_net *net = resnet_net(c->model);
    const char *tp = ts_table_exists(c->store, "best_param") == 1 ? "best_param" : "param";
    const char *tb = ts_table_exists(c->store, "best_buffer") == 1 ? "best_buffer" : "buffer";
    ERR_GOTO(rc, tr_ckpt_get(c->store, tp, NULL, net, NN_KIND_PARAM, net->params));
    ERR_GOTO(rc, tr_ckpt_get(c->store, tb, NULL, net, NN_KIND_BUFFER, net->buffers));
    size_t px = (size_t)max_batch * channels * image_size * image_size;
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&c->d_x, sizeof(float) * px));
    c->h_x = malloc(sizeof(float) * px);
    ERR_GOTO_IF(rc, !c->h_x, ERR_NOMEM, "out of memory for %d images", max_batch);
    cfg_free(root);
    return 0;
fail:
    cfg_free(root);
    ckpt_classifier_close(c);
    return rc;
}

void ckpt_classifier_close(ckpt_classifier *c) {
    if (!c) return;
    if (c->d_x && c->model) ops_free(resnet_net(c->model)->ctx, c->d_x);
    resnet_destroy(c->model);
    free(c->h_x);
    ts_close(c->store);
    memset(c, 0, sizeof *c);
}

int ckpt_classifier_run(ckpt_classifier *c, const uint8_t *u8, const float *x01, int n, float *logits,
                        float *feature) {
    ERR_IF(!c->model, ERR_USAGE, "ckpt_classifier_run on a closed classifier");
    ERR_IF(n < 1 || n > c->max_batch, ERR_USAGE, "%s: %d images (1..%d per call)", ts_path(c->store), n,
           c->max_batch);
    ERR_IF((u8 == NULL) == (x01 == NULL), ERR_USAGE, "ckpt_classifier_run: give exactly one of u8 and x01");
    int C = c->cfg.in_channels, HW = c->cfg.image_size * c->cfg.image_size, P = C * HW;
    for (int i = 0; i < n; i++) {
        float *dst = c->h_x + (size_t)i * P;
        if (u8) {
            tr_normalise(dst, u8 + (size_t)i * P, C, HW, c->mean, c->std);
        } else {
            const float *src = x01 + (size_t)i * P;
            for (int ch = 0; ch < C; ch++) {
                float m = (float)c->mean[ch], is = (float)(1.0 / c->std[ch]);
                for (int j = 0; j < HW; j++) dst[ch * HW + j] = (src[ch * HW + j] - m) * is;
            }
        }
    }
    ops_ctx *ctx = resnet_net(c->model)->ctx;
    const float *d_logits = NULL, *d_feature = NULL;
    ERR_TRY(ops_upload(ctx, c->d_x, c->h_x, sizeof(float) * (size_t)n * P));
    ERR_TRY(resnet_forward(c->model, c->d_x, n, 0, &d_logits, feature ? &d_feature : NULL));
    if (logits) ERR_TRY(ops_download(ctx, logits, d_logits, sizeof(float) * (size_t)n * ckpt_classifier_classes(c)));
    if (feature)
        ERR_TRY(ops_download(ctx, feature, d_feature, sizeof(float) * (size_t)n * ckpt_classifier_feature_dim(c)));
    return 0;
}

int ckpt_classifier_classes(const ckpt_classifier *c) { return c->cfg.num_classes; }

int ckpt_classifier_feature_dim(const ckpt_classifier *c) { return 8 * c->cfg.width; }

// --- denoiser -----------------------------------------------------------------------------------

int ckpt_denoiser_open(ckpt_denoiser *d, const char *path, ops_ctx *ctx, int max_batch) {
    memset(d, 0, sizeof *d);
    cfg *root = NULL;
    const cfg *node = NULL;
    int rc = 0;
    ERR_IF(max_batch < 1, ERR_USAGE, "%s: max_batch %d < 1", path, max_batch);
    ERR_TRY(ckpt_open_store(&d->store, path, "diffusion", d->key, &root));
    ERR_GOTO(rc, cfg_subtree(root, "unet", &node));
    ERR_GOTO(rc, unet_config_from_cfg(node, &d->cfg));
    ERR_GOTO(rc, cfg_get_int(root, "diffusion.iter_interval", &d->iter_interval));
    rc = sched_from_cfg(&d->sch, root);
    if (rc < 0) {
        err_prefix(rc, "%s: checkpoint config: ", path);
        goto fail;
    }
    ERR_GOTO(rc, unet_create(&d->model, ctx, &d->cfg, max_batch));
    d->max_batch = max_batch;
    nn_net *net = unet_net(d->model);
    ERR_GOTO(rc, tr_ckpt_get(d->store, "ema", NULL, net, NN_KIND_PARAM, net->params));
    cfg_free(root);
    return 0;
fail:
    cfg_free(root);
    ckpt_denoiser_close(d);
    return rc;
}

void ckpt_denoiser_close(ckpt_denoiser *d) {
    if (!d) return;
    unet_destroy(d->model);
    sched_free(&d->sch);
    ts_close(d->store);
    memset(d, 0, sizeof *d);
}
