// tr_config: range checks of the training configuration keys (tr.h), so that a bad value is a
// clear configuration error before any store is touched.
#include <stdio.h>
#include <string.h>

#include "common/cfg.h"
#include "common/err.h"
#include "common/nn/resnet.h"
#include "common/nn/unet.h"
#include "common/train/tr.h"

// ERR_CONFIG "config key KEY must be RULE, not VALUE (from ORIGIN)" unless lo <= v <= hi (or
// v < hi when open_hi). A NULL rule is the range itself ("in [1e-30, 1e+18]"), so the message
// always names the bound that was crossed.
static int tr_check_range(const cfg *root, const char *key, double lo, double hi, int open_hi, const char *rule) {
    double v;
    char range[96];
    ERR_TRY(cfg_get_float(root, key, &v));
    if (v >= lo && (open_hi ? v < hi : v <= hi)) return 0;
    const cfg *n = cfg_find(root, key);
    if (!rule) {
        snprintf(range, sizeof range, "in [%g, %g%s", lo, hi, open_hi ? ")" : "]");
        rule = range;
    }
    return err_set(ERR_CONFIG, "config key %s must be %s, not %g (from %s)", key, rule, v,
                   n && cfg_node_origin(n) ? cfg_node_origin(n) : "defaults");
}

#define TR_BIG 1e18

int tr_check_config(const cfg *root, const char *model) {
    if (strcmp(model, "diffusion") == 0) {
        int T;
        const cfg *node = NULL;
        unet_config uc;
        ERR_TRY(cfg_get_int(root, "diffusion.T", &T));
        ERR_TRY(tr_check_range(root, "diffusion.T", 1, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "diffusion.iter_interval", 1, T, 0, "1..diffusion.T"));
        ERR_TRY(tr_check_range(root, "diffusion.cond_ratio", 0, 1, 0, "in [0, 1]"));
        ERR_TRY(tr_check_range(root, "train_diffusion.lr", 1e-30, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_diffusion.beta1", 0, 1, 1, "in [0, 1)"));
        ERR_TRY(tr_check_range(root, "train_diffusion.beta2", 0, 1, 1, "in [0, 1)"));
        ERR_TRY(tr_check_range(root, "train_diffusion.eps", 1e-30, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_diffusion.weight_decay", 0, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_diffusion.warmup", 0, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_diffusion.lr_decay_every", 0, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_diffusion.lr_decay_factor", 1e-30, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_diffusion.grad_clip", 0, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_diffusion.ema", 0, 1, 0, "in [0, 1]"));
        ERR_TRY(tr_check_range(root, "train_diffusion.batch", 1, 1 << 20, 0, "1..1048576"));
        ERR_TRY(tr_check_range(root, "train_diffusion.steps", 1, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_diffusion.checkpoint_every", 0, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_diffusion.log_every", 0, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_diffusion.minutes", 0, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_diffusion.seed", 0, TR_BIG, 0, NULL));
        ERR_TRY(cfg_subtree(root, "unet", &node));
        return unet_config_from_cfg(node, &uc);
    }
    if (strcmp(model, "classifier") == 0) {
        const cfg *node = NULL;
        resnet_config rc;
        ERR_TRY(tr_check_range(root, "train_classifier.lr", 1e-30, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_classifier.lr_min", 0, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_classifier.momentum", 0, 1, 1, "in [0, 1)"));
        ERR_TRY(tr_check_range(root, "train_classifier.weight_decay", 0, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_classifier.batch", 2, 1 << 20, 0, "2..1048576"));
        ERR_TRY(tr_check_range(root, "train_classifier.epochs", 1, 1e9, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_classifier.crop_pad", 0, 64, 0, "0..64"));
        ERR_TRY(tr_check_range(root, "train_classifier.val_fraction", 0, 1, 1, "in [0, 1)"));
        ERR_TRY(tr_check_range(root, "train_classifier.minutes", 0, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_classifier.log_every", 0, TR_BIG, 0, NULL));
        ERR_TRY(tr_check_range(root, "train_classifier.seed", 0, TR_BIG, 0, NULL));
        ERR_TRY(cfg_subtree(root, "resnet", &node));
        return resnet_config_from_cfg(node, &rc);
    }
    return err_set(ERR_USAGE, "--model must be diffusion or classifier, not '%s'", model);
}

int tr_check_data(const cfg *root, const char *model, const tr_images *train, const tr_images *val) {
    int diff = strcmp(model, "diffusion") == 0, ch = 0, size = 0;
    const char *sec = diff ? "unet" : "resnet";
    char key[64];
    snprintf(key, sizeof key, "%s.in_channels", sec);
    ERR_TRY(cfg_get_int(root, key, &ch));
    ERR_IF(ch != train->c, ERR_CONFIG, "config key %s is %d but the training images have %d channel(s)", key, ch,
           train->c);
    ERR_IF(train->h != train->w, ERR_INPUT, "the training images are %d x %d: square images are needed", train->h,
           train->w);
    if (diff) {
        ERR_TRY(cfg_get_int(root, "unet.image_size", &size));
        ERR_IF(size != train->h, ERR_CONFIG, "config key unet.image_size is %d but the training images are %d x %d",
               size, train->h, train->w);
    } else {
        ERR_IF(train->h < 8, ERR_INPUT, "the training images are %d x %d: the classifier needs at least 8 x 8",
               train->h, train->w);
    }
    if (val)
        ERR_IF(val->c != train->c || val->h != train->h || val->w != train->w, ERR_INPUT,
               "the --val images (%d x %d x %d) differ in shape from the training images (%d x %d x %d)", val->c,
               val->h, val->w, train->c, train->h, train->w);
    return 0;
}
