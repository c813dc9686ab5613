// resnet: the ResNet-18 discriminator for 32x32 images (OpenOOD's ResNet18_32x32, METHOD.md
// section 5) on the op API, with the reference state_dict names ("layer2.0.shortcut.1.weight").
//
// Channels are width, 2 width, 4 width, 8 width over the four stages (width 64: 11.17 M
// parameters); the feature is the global-average-pooled 8*width-d activation before `fc`.
// BatchNorm running statistics (and num_batches_tracked, stored as a float) live in the net's
// buffer arena (NN_KIND_BUFFER entries), outside the parameters that optimisers update.
// All tensor arguments are device memory of the model's context; one thread at a time.
#ifndef DIFFOOD_RESNET_H
#define DIFFOOD_RESNET_H

#include <stdint.h>

#include "common/nn/nn.h"
#include "kernels/ops.h"

typedef struct {
    int width;        // channels of the first stage (64)
    int in_channels;  // 3 (1 for grey images)
    int num_classes;  // K (10)
    int image_size;   // input height = width (32); any size >= 8 works (global pooling)
    float bn_momentum; // 0.1 (PyTorch convention)
    float bn_eps;      // 1e-5
} resnet_config;

// The reference configuration: width 64, 3 channels, 10 classes, 32x32, momentum 0.1, eps 1e-5.
resnet_config resnet_config_default(void);
// ERR_CONFIG naming the key at fault.
int resnet_config_check(const resnet_config *c);
struct cfg;
// Fills *out from the `resnet` section of a config tree (keys width, in_channels, num_classes;
// the rest keep their defaults), then resnet_config_check. (Implemented in nn_cfg.c.)
int resnet_config_from_cfg(const struct cfg *node, resnet_config *out);

typedef struct resnet_model resnet_model;

// Builds a model for at most max_batch images per call on `ctx` (borrowed). Parameters start at
// zero and running statistics at (0, 1): load them (nn_param_set) or nn_init_default. *out is
// owned by the caller (resnet_destroy). ERR_CONFIG, ERR_USAGE (max_batch < 1), ERR_NOMEM,
// device errors.
int resnet_create(resnet_model **out, ops_ctx *ctx, const resnet_config *cfg, int max_batch);
void resnet_destroy(resnet_model *m);
nn_net *resnet_net(resnet_model *m);
const resnet_config *resnet_cfg(const resnet_model *m);

// Forward of x (n, in_channels, S, S). train != 0: BatchNorm uses batch statistics and updates
// the running statistics (and num_batches_tracked); train == 0: running statistics, nothing
// changes. *logits (n, K) and *feature (n, 8*width), when not NULL, receive device pointers into
// the model's activation arena, valid until the next forward. x is read during the call only.
// ERR_USAGE for n outside 1..max_batch; op errors.
int resnet_forward(resnet_model *m, const float *x, int n, int train, const float **logits,
                   const float **feature);
// Backward of the last forward, which must have been a training forward with the same n:
// ACCUMULATES every parameter gradient into resnet_net(m)->grads and, when dx is not NULL,
// d/dx into dx (n, in_channels, S, S). dlogits (n, K). ERR_USAGE otherwise; op errors.
int resnet_backward(resnet_model *m, float *dx, const float *dlogits, int n);

#endif
