// ref_ops: plain, obviously-right reference loops for every op of kernels/ops.h, in double,
// plus the helpers the op tests share (random fills, error measures, finite differences).
//
// Used only by the tests (tests/test_ops*.c; compiled into the test runner through
// tests/test_ops_ref.c, not into the library). Every forward reference ASSIGNS its outputs like
// the op it mirrors; the references of backward ops are finite differences of these forwards
// (ref_fd_grad), so each backward is checked against the derivative of an independent forward.
// Nothing here allocates except where stated, and nothing fails.
#ifndef DIFFOOD_REF_OPS_H
#define DIFFOOD_REF_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

// --- helpers ------------------------------------------------------------------------------------

// x[i] = uniform in [lo, hi) from a small deterministic generator seeded by `seed`.
void ref_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);
// A freshly allocated (malloc) array of n uniform floats in [lo, hi); the caller frees it.
float *ref_rand(size_t n, uint64_t seed, float lo, float hi);
// d[i] = (double)f[i]
void ref_to_double(double *d, const float *f, size_t n);
// Largest |a[i] - b[i]| / (|b[i]| + mean |b|) (0 when b is all zero and a == b): a relative error
// per element that does not blow up on the few elements that cancel to almost zero.
double ref_rel_err(const float *a, const double *b, size_t n);
// A freshly allocated (malloc) copy of f in double; the caller frees it. NULL when f is NULL.
double *ref_dup(const float *f, size_t n);

// Finite-difference gradient of L = sum_i r[i] * out[i] with respect to param (np doubles):
// grad[j] = (L(param + h e_j) - L(param - h e_j)) / 2h, where `fwd(cfg, out)` computes the ny
// outputs from the current contents of the parameter arrays that `cfg` points to (param among
// them; it is perturbed in place and restored). Allocates and frees its own output buffer.
void ref_fd_grad(void (*fwd)(void *cfg, double *out), void *cfg, double *param, size_t np, size_t ny,
                 const double *r, double *grad, double h);

// --- elementwise ------------------------------------------------------------------------------
double ref_act(ops_act act, double z);
void ref_act_fwd(ops_act act, double *y, const double *x, size_t n);

// --- convolution and GEMM -------------------------------------------------------------------------
// y (N, C_out, HO, WO) = conv(x, w) + b (b may be NULL), straight from the definition.
void ref_conv2d_fwd(const ops_conv_shape *s, double *y, const double *x, const double *w, const double *b);
// y (N, OUT) = x (N, IN) w^T + b (b may be NULL)
void ref_linear_fwd(double *y, const double *x, const double *w, const double *b, int n, int in, int out);
// c[b] = alpha * op(a[b]) op(b[b]) + beta * c[b] (same layout as ops_bmm)
void ref_bmm(double *c, const double *a, const double *b, int batch, int m, int n, int k, int ta, int tb, double alpha,
             double beta);

// --- normalisation --------------------------------------------------------------------------------
// mean, rstd (N, G) may be NULL.
void ref_groupnorm_fwd(ops_act act, double *y, double *mean, double *rstd, const double *x, const double *gamma,
                       const double *beta, int n, int c, int hw, int groups, double eps);
// mean, rstd (C), running_mean, running_var (C) may be NULL.
void ref_batchnorm_fwd_train(ops_act act, double *y, double *mean, double *rstd, double *running_mean,
                             double *running_var, const double *x, const double *gamma, const double *beta, int n,
                             int c, int hw, double momentum, double eps);
void ref_batchnorm_fwd_eval(ops_act act, double *y, const double *x, const double *gamma, const double *beta,
                            const double *running_mean, const double *running_var, int n, int c, int hw, double eps);

// --- shape ops ------------------------------------------------------------------------------------
// y (N, C, HW) = x + bias[n, c] broadcast (the forward whose adjoint is channel_sum)
void ref_add_channel_bias(double *y, const double *x, const double *bias, int n, int c, int hw);
void ref_concat_fwd(double *y, const double *a, const double *b, int n, int ca, int cb, int hw);
void ref_upsample2x_fwd(double *y, const double *x, int n, int c, int h, int w);
void ref_avgpool_fwd(double *y, const double *x, int n, int c, int hw);

// --- softmax, embeddings ----------------------------------------------------------------------------
void ref_softmax_fwd(double *y, const double *x, int rows, int cols, double scale);
void ref_embedding_fwd(double *y, const double *table, const int32_t *ids, int n, int dim);
// METHOD.md 4 in double: half = dim/2, f_k = exp(-k ln(10000)/(half-1)), [sin(t f), cos(t f)], odd dim zero-padded
void ref_timestep_embedding(double *y, const float *t, int n, int dim);

// --- randomness -----------------------------------------------------------------------------------
// One element at a time through philox_normal_at / philox_uniform_at (float, as the ops).
void ref_randn(float *y, size_t n, philox_key key, uint64_t offset);
void ref_dropout_fwd(double *y, const double *x, size_t n, double p, philox_key key, uint64_t offset);

// --- losses and optimisation ------------------------------------------------------------------------
double ref_mse_sum_loss(const double *pred, const double *target, int n, int per);
double ref_softmax_xent_loss(const double *logits, const int32_t *labels, int n, int k);
double ref_sumsq(const float *x, size_t n);
// One step of torch.optim.AdamW (decoupled decay, bias corrections) in double.
void ref_adamw(double *p, const double *g, double *m, double *v, size_t n, double lr, double beta1, double beta2,
               double eps, double wd, int step);
// One step of torch.optim.SGD (dampening 0) in double; buf starts at zero.
void ref_sgd(double *p, const double *g, double *buf, size_t n, double lr, double momentum, double wd, int nesterov);
void ref_ema(double *ema, const double *p, size_t n, double decay);

#endif
