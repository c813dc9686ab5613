// tr_config: range checks of the training configuration keys (tr.h), so that a bad value is a
// clear configuration error before any store is touched.
#include <string.h>

#include "common/cfg.h"
#include "common/err.h"
#include "common/nn/resnet.h"
#include "common/nn/unet.h"
#include "common/train/tr.h"

// ERR_CONFIG "config key KEY must be RULE, not VALUE (from ORIGIN)" unless lo <= v <= hi (or
// v < hi when open_hi).
static int tr_check_range(const cfg *root, const char *key, double lo, double hi, int open_hi, const char *rule) {
    double v;
    ERR_TRY(cfg_get_float(root, key, &v));
    if (v >= lo && (open_hi ? v < hi : v <= hi)) return 0;
    const cfg *n = cfg_find(root, key);
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
        ERR_TRY(tr_check_range(root, "diffusion.T", 1, TR_BIG, 0, ">= 1"));
        ERR_TRY(tr_check_range(root, "diffusion.iter_interval", 1, T, 0, "1..diffusion.T"));
        ERR_TRY(tr_check_range(root, "diffusion.cond_ratio", 0, 1, 0, "in [0, 1]"));
        ERR_TRY(tr_check_range(root, "train_diffusion.lr", 1e-30, TR_BIG, 0, "> 0"));
        ERR_TRY(tr_check_range(root, "train_diffusion.beta1", 0, 1, 1, "in [0, 1)"));
        ERR_TRY(tr_check_range(root, "train_diffusion.beta2", 0, 1, 1, "in [0, 1)"));
        ERR_TRY(tr_check_range(root, "train_diffusion.eps", 1e-30, TR_BIG, 0, "> 0"));
        ERR_TRY(tr_check_range(root, "train_diffusion.weight_decay", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(tr_check_range(root, "train_diffusion.warmup", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(tr_check_range(root, "train_diffusion.lr_decay_every", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(tr_check_range(root, "train_diffusion.lr_decay_factor", 1e-30, TR_BIG, 0, "> 0"));
        ERR_TRY(tr_check_range(root, "train_diffusion.grad_clip", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(tr_check_range(root, "train_diffusion.ema", 0, 1, 0, "in [0, 1]"));
        ERR_TRY(tr_check_range(root, "train_diffusion.batch", 1, 1 << 20, 0, "1..1048576"));
        ERR_TRY(tr_check_range(root, "train_diffusion.steps", 1, TR_BIG, 0, ">= 1"));
        ERR_TRY(tr_check_range(root, "train_diffusion.checkpoint_every", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(tr_check_range(root, "train_diffusion.log_every", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(tr_check_range(root, "train_diffusion.minutes", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(tr_check_range(root, "train_diffusion.seed", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(cfg_subtree(root, "unet", &node));
        return unet_config_from_cfg(node, &uc);
    }
    if (strcmp(model, "classifier") == 0) {
        const cfg *node = NULL;
        resnet_config rc;
        ERR_TRY(tr_check_range(root, "train_classifier.lr", 1e-30, TR_BIG, 0, "> 0"));
        ERR_TRY(tr_check_range(root, "train_classifier.lr_min", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(tr_check_range(root, "train_classifier.momentum", 0, 1, 1, "in [0, 1)"));
        ERR_TRY(tr_check_range(root, "train_classifier.weight_decay", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(tr_check_range(root, "train_classifier.batch", 2, 1 << 20, 0, "2..1048576"));
        ERR_TRY(tr_check_range(root, "train_classifier.epochs", 1, 1e9, 0, ">= 1"));
        ERR_TRY(tr_check_range(root, "train_classifier.crop_pad", 0, 64, 0, "0..64"));
        ERR_TRY(tr_check_range(root, "train_classifier.val_fraction", 0, 1, 1, "in [0, 1)"));
        ERR_TRY(tr_check_range(root, "train_classifier.minutes", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(tr_check_range(root, "train_classifier.log_every", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(tr_check_range(root, "train_classifier.seed", 0, TR_BIG, 0, ">= 0"));
        ERR_TRY(cfg_subtree(root, "resnet", &node));
        return resnet_config_from_cfg(node, &rc);
    }
    return err_set(ERR_USAGE, "--model must be diffusion or classifier, not '%s'", model);
}
