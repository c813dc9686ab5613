// cpu_winograd: 3x3 stride-1 convolution by Winograd F(4x4, 3x3) or F(2x2, 3x3) for the CPU
// backend (kernels/cpu/cpu_winograd.c). Internal to kernels/cpu/.
#ifndef DIFFOOD_CPU_WINOGRAD_H
#define DIFFOOD_CPU_WINOGRAD_H

#include "kernels/cpu/cpu_internal.h"

// 1 when cpu_winograd_conv handles `s` (3x3, stride 1, at least 8 channels in and out; for the
// backward-data pass also pads <= 2), 0 otherwise. The shape must already be valid.
int cpu_winograd_usable(const ops_conv_shape *s, int bwd_data);

// bwd_data 0: y (N, C_out, HO, WO) = conv(x (N, C_in, H, W), w) + b (b may be NULL), assigned.
// bwd_data 1: y is dx (N, C_in, H, W) += conv_transpose(x = dy (N, C_out, HO, WO), w); b unused.
// w is (C_out, C_in, 3, 3) in both cases. Uses the context's scratch buffer. 0 or ERR_NOMEM.
int cpu_winograd_conv(ops_ctx *ctx, const ops_conv_shape *s, float *y, const float *x, const float *w, const float *b,
                      int bwd_data);

// dw (C_out, C_in, 3, 3) += the weight gradient of the convolution for output gradient dy
// (N, C_out, HO, WO) and input x (N, C_in, H, W), by the same transforms. 0 or ERR_NOMEM.
int cpu_winograd_bwd_weight(ops_ctx *ctx, const ops_conv_shape *s, float *dw, const float *dy, const float *x);

// Forces the variant for every later call: m = 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3)), or 0 to
// choose by pass, plane size and channels (the default; DIFFOOD_WINOGRAD=2|4 in the
// environment forces it too, unless a call here came first).
// Returns the previous setting. For tests and A/B benchmarks; not thread-safe.
int cpu_winograd_force(int m);

#endif
