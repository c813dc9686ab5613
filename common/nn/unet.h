// unet: the class-conditional DDIM UNet denoiser eps(x_t, t, y) of METHOD.md section 4, on the
// op API (kernels/ops.h), with the reference state_dict names (parameters found by name through
// nn_param_find(unet_net(m), "down.0.block.0.conv1.weight")).
//
// Usage: unet_create (builds the table and every arena for max_batch images) -> nn_init_default
// or nn_param_set per tensor -> unet_forward / unet_backward as often as wanted -> unet_destroy.
// All tensor arguments are device memory of the model's context. A model is used by one thread
// at a time.
#ifndef DIFFOOD_UNET_H
#define DIFFOOD_UNET_H

#include <stdint.h>

#include "common/nn/nn.h"
#include "kernels/ops.h"

#define UNET_MAX_LEVELS 8
#define UNET_MAX_ATTN 8

typedef struct {
    int ch;                          // base channels (128)
    int ch_mult[UNET_MAX_LEVELS];    // per level (1, 2, 2, 2)
    int n_levels;                    // entries of ch_mult
    int num_res_blocks;              // per level on the way down (up: one more)
    int attn_res[UNET_MAX_ATTN];     // resolutions with attention (16)
    int n_attn;
    float dropout;                   // in every ResnetBlock, training only (0.1)
    int resamp_with_conv;            // 1: conv in Downsample/Upsample (0 is unsupported)
    int in_channels, out_ch;         // 3, 3
    int image_size;                  // 32 (square)
    int num_classes;                 // K; label_emb has K+1 rows, row K is the null label
    int num_groups;                  // GroupNorm groups (32)
} unet_config;

// The paper's CIFAR-10 configuration (35.75 M parameters).
unet_config unet_config_cifar10(void);
// Checks a configuration: ERR_CONFIG with a message naming the key at fault (channels not
// divisible by num_groups, odd ch, image size not divisible by 2^(levels-1), ...);
// ERR_UNSUPPORTED for resamp_with_conv 0.
int unet_config_check(const unet_config *c);

struct cfg;
// Fills *out from the `unet` section of a config tree (common/cfg.h): `node` is that section
// (cfg_subtree(root, "unet", &node)). Keys: ch, ch_mult, num_res_blocks, attn_resolutions,
// dropout, resamp_with_conv, in_channels, out_ch, image_size, num_classes, num_groups. Then
// unet_config_check. ERR_CONFIG naming the key. (Implemented in nn_cfg.c.)
int unet_config_from_cfg(const struct cfg *node, unet_config *out);

typedef struct unet_model unet_model;

// Builds a model for at most max_batch images per call on `ctx` (borrowed; must outlive the
// model). Parameters start at zero: load them (nn_param_set) or nn_init_default. *out is owned
// by the caller (unet_destroy). ERR_CONFIG/ERR_UNSUPPORTED (bad config), ERR_USAGE
// (max_batch < 1), ERR_NOMEM, device errors.
int unet_create(unet_model **out, ops_ctx *ctx, const unet_config *cfg, int max_batch);
void unet_destroy(unet_model *m);
// The model's table and arenas (params, grads). Borrowed; valid until unet_destroy.
nn_net *unet_net(unet_model *m);
const unet_config *unet_cfg(const unet_model *m);

// eps (n, out_ch, S, S) = UNet(x (n, in_channels, S, S), t (n) float timesteps, y (n) int32
// labels in 0..K). `eps` is assigned; x, t, y are read during the call only (what backward needs
// is saved). Dropout is applied when `train` is nonzero and dropout > 0, with uniform numbers of
// the Philox stream `key` (the caller picks a new key per step). ERR_USAGE for n outside
// 1..max_batch, ERR_INPUT for a label outside 0..K, op errors.
int unet_forward(unet_model *m, float *eps, const float *x, const float *t, const int32_t *y, int n,
                 int train, philox_key key);
// Backward of the last unet_forward: ACCUMULATES every parameter gradient into
// unet_net(m)->grads (zero them with nn_zero_grad first) and, when dx is not NULL, d eps/d x
// into dx (n, in_channels, S, S). deps (n, out_ch, S, S) is d loss / d eps. ERR_USAGE when no
// forward came before or n differs from it; op errors.
int unet_backward(unet_model *m, float *dx, const float *deps, int n);

#endif
