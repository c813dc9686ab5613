// ckpt: the networks of finished checkpoint stores, loaded for detection (sample,
// extract-features): the discriminator with its best weights, buffers and input normalisation,
// the denoiser with its EMA weights and noise schedule. The stores are opened read only and
// stay open (and locked against nothing: readers never block the writer) until ckpt_*_close.
//
// A checkpoint must be complete (meta complete=true), of the right model (meta model), with a
// readable config (meta config, canonical text of the training config). Errors name the path:
// ERR_NOTFOUND (no store), ERR_INPUT (incomplete, wrong model, image shape that does not fit),
// ERR_CORRUPT (a record or meta value), device and store errors.
#ifndef DIFFOOD_CKPT_H
#define DIFFOOD_CKPT_H

#include <stdint.h>

#include "common/hash.h"
#include "common/nn/resnet.h"
#include "common/nn/unet.h"
#include "common/schedule.h"
#include "common/store.h"
#include "kernels/ops.h"

typedef struct {
    ts_store *store;
    char key[HASH_HEX_LEN + 1]; // the checkpoint store's key
    resnet_config cfg;          // image_size set to the images' size
    resnet_model *model;        // built for max_batch images
    double mean[4], std[4];     // input normalisation of x in [0, 1]: (x - mean) / std per channel
    int max_batch;
    float *d_x;                 // (max_batch, C, S, S) device input buffer
    float *h_x;                 // (max_batch, C, S, S) host staging
} ckpt_classifier;

// Loads the classifier checkpoint at `path` for images of `channels` x `image_size` x
// `image_size` (ERR_INPUT naming the store when its in_channels differ), best_param/best_buffer
// (param/buffer when absent), eval mode. *c is filled; release with ckpt_classifier_close.
int ckpt_classifier_open(ckpt_classifier *c, const char *path, ops_ctx *ctx, int channels, int image_size,
                         int max_batch);
void ckpt_classifier_close(ckpt_classifier *c);
// Runs the classifier (eval BatchNorm) on n (<= max_batch) images. Exactly one of u8 (n, C, S, S)
// pixels 0..255 (x = v / 255) and x01 (n, C, S, S) floats in [0, 1] is not NULL (host memory).
// logits (n, K) and feature (n, D = 8 * width) receive host copies when not NULL.
int ckpt_classifier_run(ckpt_classifier *c, const uint8_t *u8, const float *x01, int n, float *logits,
                        float *feature);
// K and D of the loaded network.
int ckpt_classifier_classes(const ckpt_classifier *c);
int ckpt_classifier_feature_dim(const ckpt_classifier *c);

typedef struct {
    ts_store *store;
    char key[HASH_HEX_LEN + 1];
    unet_config cfg;
    unet_model *model; // EMA weights, built for max_batch images
    sched sch;         // the schedule of the checkpoint's `diffusion` section
    int iter_interval; // trained on t < iter_interval only (diffusion.iter_interval)
    int max_batch;
} ckpt_denoiser;

// Loads the denoiser checkpoint at `path` (EMA weights) for max_batch images per UNet call.
int ckpt_denoiser_open(ckpt_denoiser *d, const char *path, ops_ctx *ctx, int max_batch);
void ckpt_denoiser_close(ckpt_denoiser *d);

#endif
