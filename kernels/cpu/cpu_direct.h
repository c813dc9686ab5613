// cpu_direct: 3x3 pad-1 convolutions computed directly, with AVX-512 register tiles
// (kernels/cpu/cpu_direct.c): stride 1 on narrow layers, where Winograd's transforms cost more
// than they save, and the stride-2 forward, where im2col's copy costs as much as its GEMM.
// Internal to kernels/cpu/.
#ifndef DIFFOOD_CPU_DIRECT_H
#define DIFFOOD_CPU_DIRECT_H

#include "kernels/cpu/cpu_internal.h"

// 1 when cpu_direct_conv computes `s` for this pass (bwd_data 0: forward, 1: backward data):
// an AVX-512 build, 3x3, pad 1 at the top and left, and either stride 1 with pad 1 on every side
// or a stride-2 forward (any bottom and right pads), where it measured faster (cpu_direct.c), or
// wherever it applies when forced. The shape must already be valid.
int cpu_direct_usable(const ops_conv_shape *s, int bwd_data);

// bwd_data 0: y (N, C_out, H, W) = conv(x (N, C_in, H, W), w) + b (b may be NULL), assigned.
// bwd_data 1: y is dx (N, C_in, H, W) += conv_transpose(x = dy (N, C_out, H, W), w); b unused.
// w is (C_out, C_in, 3, 3) in both cases. Uses the context's scratch buffer. 0 or ERR_NOMEM.
int cpu_direct_conv(ops_ctx *ctx, const ops_conv_shape *s, float *y, const float *x, const float *w, const float *b,
                    int bwd_data);

// Forces the choice for every later call: 1 never direct, 2 direct wherever usable at all, 0 by
// channels (the default; DIFFOOD_CONV_DIRECT=0|1 in the environment: 0 never, 1 always, unless a
// call here came first). Returns the previous setting. For tests and A/B benchmarks.
int cpu_direct_force(int mode);

#endif
