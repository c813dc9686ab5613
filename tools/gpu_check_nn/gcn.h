// gcn: gpu-check-nn, the network-level GPU checks: the UNet and ResNet-18 (common/nn/) run on
// the CPU and on CUDA with the same parameters and inputs (forward, backward, BatchNorm
// statistics) and are compared; a short training run on the GPU; and GPU throughput of the
// paper UNet and ResNet-18 (forward, training step), in images per second.
#ifndef DIFFOOD_GCN_H
#define DIFFOOD_GCN_H

#include <stddef.h>
#include <stdint.h>

#include "common/nn/resnet.h"
#include "common/nn/unet.h"
#include "kernels/ops.h"

typedef struct {
    int dry;          // CPU (1 thread) against CPU (all threads) instead of CUDA
    int threads;      // CPU threads (0 = all)
    int tf32;         // device-side TF32
    int paper;        // UNet: the paper CIFAR-10 configuration (else a small one)
    int batch;        // images per forward
    int iters;        // bench iterations (after 3 warm-up)
    int steps;        // training steps of the short run
    uint64_t seed;
    int checks, failed;
} gcn_opts;

// The small UNet of the quick checks (16x16 grey images, ch 32).
unet_config gcn_unet_small(void);

// Compares the UNet (forward with dropout from one Philox key, backward, every parameter
// gradient, input gradient) and ResNet-18 (training forward, running statistics, backward) on
// the reference (CPU) and device contexts; prints one row per output. 0, or an err.h code when
// something could not run (rows that differ count as failed, not as errors).
int gcn_compare_unet(gcn_opts *o, ops_ctx *ref, ops_ctx *dut);
int gcn_compare_resnet(gcn_opts *o, ops_ctx *ref, ops_ctx *dut);
// `steps` AdamW steps of the UNet on one fixed batch on ctx; the loss must fall. Prints the
// first and last loss and a row. 0 or an err.h code.
int gcn_train_short(gcn_opts *o, ops_ctx *ctx);
// Throughput on ctx: the UNet (paper or small) and ResNet-18 forward (eval) and training step
// (forward, backward, optimiser); prints "bench MODEL MODE batch B: X img/s" lines.
int gcn_bench(gcn_opts *o, ops_ctx *ctx, const char *model);

// Norm-wise relative error of b against a (n floats each, host); NaN/Inf give +inf.
double gcn_rel_err(const float *a, const float *b, size_t n);
// Prints and counts one comparison row.
void gcn_row(gcn_opts *o, const char *model, const char *what, double err, double tol, const char *note);
// Host copy of n floats of device memory on ctx (malloc'ed; NULL with an err message).
float *gcn_download(ops_ctx *ctx, const float *dev, size_t n);
// Device copy on ctx of n host floats; NULL with an err message.
float *gcn_upload(ops_ctx *ctx, const float *host, size_t n);
// Fills h with uniform values in [lo, hi) from a splitmix64 state.
void gcn_rand(uint64_t *state, float *h, size_t n, float lo, float hi);
// Seconds of a monotonic clock.
double gcn_now(void);

#endif
