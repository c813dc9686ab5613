// optim: optimisers over a network's flat parameter arena (nn.h): AdamW with linear warm-up
// (and optional step decay) for the denoiser, SGD with Nesterov momentum and per-step cosine
// annealing to a floor for the discriminator, global gradient-norm clipping, and an EMA of the
// weights (METHOD.md sections 3 and 5). Each update is one ops_* call over the whole arena.
//
// Step numbering: `step` counts optimiser steps already taken (0 before the first). The
// learning rate of the step about to be taken is optim_lr(o, step):
//   AdamW: lr * step / warmup while step < warmup (the first step has lr 0), then
//          lr * decay_factor^floor((step - warmup) / decay_every) (decay_every 0: lr): the
//          reference's LambdaLR (runner.py get_optim), stepped after each optimiser step, so
//          that optimiser step k uses lambda(k) (warmup 0: no warm-up);
//   SGD:   floor + (lr - floor) * (1 + cos(pi * step / total_steps)) / 2 (OpenOOD's
//          cosine_annealing through LambdaLR; total_steps 0: constant lr).
// An optimiser owns its state arena (AdamW: m then v, 2n floats; SGD: the momentum buffer, n
// floats) on the context's device; nothing is allocated in optim_step.
#ifndef DIFFOOD_OPTIM_H
#define DIFFOOD_OPTIM_H

#include <stddef.h>

#include "kernels/ops.h"

typedef enum { OPTIM_ADAMW, OPTIM_SGD, OPTIM_KIND_COUNT } optim_kind;

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    long warmup;        // steps of linear warm-up (0 = none)
    long decay_every;   // after the warm-up, multiply lr by decay_factor every this many steps (0 = never)
    float decay_factor;
    float clip_norm;    // global L2 gradient norm clipping (0 = off)
} optim_adamw_config;

typedef struct {
    float lr, momentum, weight_decay;
    int nesterov;
    long total_steps;   // length of the cosine schedule (0 = constant lr)
    float lr_floor;     // lr at the end of the cosine
    float clip_norm;    // 0 = off (OpenOOD does not clip)
} optim_sgd_config;

typedef struct optim optim;

// METHOD.md defaults: AdamW lr 2e-4, betas (0.9, 0.999), eps 1e-8, wd 0, warm-up 5000, clip 1;
// SGD lr 0.1, momentum 0.9, Nesterov, wd 5e-4, floor 1e-6 (total_steps left 0: set it).
optim_adamw_config optim_adamw_default(void);
optim_sgd_config optim_sgd_default(void);

// Creates an optimiser for n parameters on ctx (borrowed), with zeroed state. *out is owned by
// the caller (optim_destroy). ERR_CONFIG (bad hyper-parameters), ERR_NOMEM, device errors.
int optim_adamw_create(optim **out, ops_ctx *ctx, size_t n, const optim_adamw_config *cfg);
int optim_sgd_create(optim **out, ops_ctx *ctx, size_t n, const optim_sgd_config *cfg);
void optim_destroy(optim *o);

// Learning rate of the step taken after `step` steps (see the header comment).
double optim_lr(const optim *o, long step);
// Steps taken so far; set it when resuming from a checkpoint (with the state arena restored).
long optim_steps(const optim *o);
void optim_set_steps(optim *o, long steps);
// The state arena (device memory, *n floats) for checkpoints. Borrowed.
float *optim_state(optim *o, size_t *n);

// One step: clips `grads` in place when clip_norm > 0, then updates `params` (n floats each,
// device memory) with the current learning rate, and counts the step. *grad_norm (may be NULL)
// receives the global gradient L2 norm before clipping (computed only when clipping or asked
// for). Op errors.
int optim_step(optim *o, float *params, float *grads, float *grad_norm);

// Global L2 norm of grads (n floats) into *norm; when max_norm > 0 and the norm exceeds it,
// scales grads by max_norm / (norm + 1e-6) (torch.nn.utils.clip_grad_norm_). `tmp` is one
// float of device memory. Op errors.
int optim_clip_grad_norm(ops_ctx *ctx, float *grads, size_t n, float max_norm, float *tmp, float *norm);

// --- EMA of the weights ------------------------------------------------------------------------

typedef struct optim_ema optim_ema;

// A shadow copy of params (n floats, device) updated as ema = decay ema + (1 - decay) params.
// *out owned by the caller (optim_ema_destroy). ERR_CONFIG (decay outside [0, 1]), ERR_NOMEM.
int optim_ema_create(optim_ema **out, ops_ctx *ctx, const float *params, size_t n, float decay);
void optim_ema_destroy(optim_ema *e);
int optim_ema_update(optim_ema *e, const float *params);
// The shadow weights (device, n floats); borrowed.
float *optim_ema_params(optim_ema *e);

#endif
