// test_ops_ref: helpers shared by the op suites (tests/test_ops_*.c), defined in test_ops_ref.c
// together with the op references (kernels/cpu/ref/).
#ifndef DIFFOOD_TEST_OPS_REF_H
#define DIFFOOD_TEST_OPS_REF_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

#define TOPS_GTOL 1e-4 // float analytic gradient vs double finite differences
#define TOPS_FD_H 1e-6

// A CPU context with `threads` threads (asserts success). Release with ops_ctx_destroy.
ops_ctx *tops_ctx(int threads);
// Asserts that got - pre (the accumulated part; pre may be NULL) equals, to TOPS_GTOL relative,
// the finite-difference gradient of fwd (double reference forward over cfg) w.r.t. param (np
// values), projected on r (ny outputs). `what` names the case in the failure message.
void tops_grad_check(void (*fwd)(void *, double *), void *cfg, double *param, size_t np, size_t ny,
                     const float *r, const float *got, const float *pre, const char *what);
// The paths of 3x3 stride-1 convolutions (kernels/cpu/): TOPS_CONV_F2 and TOPS_CONV_F4 force a
// Winograd variant with the direct kernel off, TOPS_CONV_DIRECT forces the direct kernel wherever
// it applies (Winograd by default elsewhere), TOPS_CONV_AUTO restores the defaults. Each path
// rounds differently: tests that compare bits name theirs.
enum { TOPS_CONV_AUTO, TOPS_CONV_F2, TOPS_CONV_F4, TOPS_CONV_DIRECT, TOPS_CONV_PATHS };
void tops_conv_path(int path);
extern const char *const tops_conv_path_names[TOPS_CONV_PATHS];
// A gradient buffer of n random values in [-1, 1) (malloc'd) and, in *copy, a malloc'd copy.
float *tops_prefill(size_t n, uint64_t seed, float **copy);

#endif
