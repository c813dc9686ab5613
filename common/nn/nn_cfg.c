// nn_cfg: the network configurations from a config tree (common/cfg.h): the `unet` and `resnet`
// sections of config/defaults.yml. Kept apart from unet.c/resnet.c so that using a network does
// not pull the YAML code into a program.
#include <stdbool.h>

#include "common/cfg.h"
#include "common/err.h"
#include "common/nn/resnet.h"
#include "common/nn/unet.h"

int unet_config_from_cfg(const struct cfg *node, unet_config *out) {
    unet_config c = unet_config_cifar10();
    size_t n = 0;
    double dropout = 0.0;
    bool with_conv = true;
    ERR_TRY(cfg_get_int(node, "ch", &c.ch));
    ERR_TRY(cfg_get_int_list(node, "ch_mult", c.ch_mult, UNET_MAX_LEVELS, &n));
    c.n_levels = (int)n;
    ERR_TRY(cfg_get_int(node, "num_res_blocks", &c.num_res_blocks));
    ERR_TRY(cfg_get_int_list(node, "attn_resolutions", c.attn_res, UNET_MAX_ATTN, &n));
    c.n_attn = (int)n;
    ERR_TRY(cfg_get_float(node, "dropout", &dropout));
    c.dropout = (float)dropout;
    ERR_TRY(cfg_get_bool(node, "resamp_with_conv", &with_conv));
    c.resamp_with_conv = with_conv;
    ERR_TRY(cfg_get_int(node, "in_channels", &c.in_channels));
    ERR_TRY(cfg_get_int(node, "out_ch", &c.out_ch));
    ERR_TRY(cfg_get_int(node, "image_size", &c.image_size));
    ERR_TRY(cfg_get_int(node, "num_classes", &c.num_classes));
    ERR_TRY(cfg_get_int(node, "num_groups", &c.num_groups));
    ERR_TRY(unet_config_check(&c));
    *out = c;
    return 0;
}

int resnet_config_from_cfg(const struct cfg *node, resnet_config *out) {
    resnet_config c = resnet_config_default();
    ERR_TRY(cfg_get_int(node, "width", &c.width));
    ERR_TRY(cfg_get_int(node, "in_channels", &c.in_channels));
    ERR_TRY(cfg_get_int(node, "num_classes", &c.num_classes));
    ERR_TRY(resnet_config_check(&c));
    *out = c;
    return 0;
}
