// nn: what the networks (unet, resnet) share: the table of named tensors, the arenas, the layer
// helpers over ops.h, default initialisation and access by name.
//
// Memory by lifetime (STYLE.md 5). A network owns four device allocations, made once by
// nn_net_alloc after the network has registered everything it needs:
//   params   every trainable parameter, contiguous (optimisers and EMA are single ops calls)
//   grads    the same layout as params
//   buffers  non-trainable state (BatchNorm running statistics, num_batches_tracked as float)
//   acts     forward activations and their gradients, sized for `max_batch` images
// Nothing is allocated in a forward, backward or optimiser step.
//
// The table lists every named tensor in the reference state_dict order with the reference
// names ("down.0.block.0.conv1.weight"), so checkpoints load one to one. Entries point into
// params (kind NN_KIND_PARAM) or buffers (NN_KIND_BUFFER) by a float offset; the gradient of a
// parameter lives at the same offset in grads.
//
// Activations are registered as offsets (nn_act) while the network is being built, and turned
// into pointers (nn_ptr) at run time, so the build is one pass and the arena one allocation.
// Gradient buffers of activations are registered with nn_dact: the backward of every network
// zeroes them all (nn_zero_dacts) before it accumulates, following ops.h's ACCUMULATE rule.
// Gradients that live only inside one module's backward (a block's internal tensors) come from
// a shared scratch region instead (nn_scratch_begin / nn_scratch): every module reuses the same
// memory and zeroes its part at the start of its backward (nn_scratch_zero), which halves the
// gradient memory and keeps the zeroed buffers in cache.
#ifndef DIFFOOD_NN_H
#define DIFFOOD_NN_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

#define NN_NAME_MAX 96
#define NN_MAX_RANK 4

typedef enum { NN_KIND_PARAM, NN_KIND_BUFFER, NN_KIND_COUNT } nn_kind;

// How nn_init_default fills an entry (PyTorch's default initialisation of each module).
typedef enum {
    NN_INIT_ZERO,          // biases of norms, running means
    NN_INIT_ONE,           // norm weights, running variances
    NN_INIT_FANIN_UNIFORM, // conv/linear weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    NN_INIT_NORMAL,        // embeddings: N(0, 1)
    NN_INIT_COUNT
} nn_init;

typedef struct {
    char name[NN_NAME_MAX];
    int rank;               // 0 for a scalar (num_batches_tracked)
    int shape[NN_MAX_RANK];
    size_t numel;
    size_t offset;          // floats into params (NN_KIND_PARAM) or buffers (NN_KIND_BUFFER)
    nn_kind kind;
    nn_init init;
    int fan_in;             // for NN_INIT_FANIN_UNIFORM
} nn_entry;

// A registered gradient buffer of an activation: per_sample floats per image.
typedef struct {
    size_t offset, per_sample;
} nn_dact_rec;

// Optional profile of the conv/linear helpers (benchmarks only): when nn_net.prof is set, each
// helper call is synchronised and timed, and accumulated per (op, shape) row.
#define NN_PROF_ROWS 160
typedef struct {
    char key[88];   // "conv_fwd 64->128 k3 s1 16x16"
    double seconds; // wall time, summed over calls
    double flops;   // multiply-adds x 2, summed over calls
    long calls;
} nn_prof_row;
typedef struct {
    nn_prof_row rows[NN_PROF_ROWS];
    int n;
} nn_prof;

// The shared part of a network. Fields are read-only for users; the network fills them.
typedef struct nn_net {
    ops_ctx *ctx;            // borrowed; must outlive the network
    int max_batch;           // activations are sized for this many images
    nn_entry *entries;       // the table, state_dict order
    int n_entries, cap_entries;
    size_t n_params;         // floats in params and grads
    size_t n_buffers;        // floats in buffers
    size_t n_acts;           // floats in acts
    nn_dact_rec *dacts;      // registered activation gradients
    int n_dacts, cap_dacts;
    int build_err;           // a failed nn_dact record (reported by nn_net_alloc)
    nn_prof *prof;           // NULL (default) or a profile to fill (borrowed)
    size_t scratch_cur;      // floats of scratch the module being built uses so far
    size_t scratch_max;      // the largest module's scratch (floats)
    size_t scratch_at;       // where the scratch region starts in acts (set by nn_net_alloc)
    float *params, *grads, *buffers, *acts; // device memory (NULL until nn_net_alloc)
    int params_shared;       // params and buffers belong to another net (nn_net_share_params)
} nn_net;

// --- building (used by the networks) ---------------------------------------------------------

// Empties `net` for `ctx` and max_batch images. Never fails.
void nn_net_init(nn_net *net, ops_ctx *ctx, int max_batch);
// Registers a tensor named by fmt (printf style) of rank 0..4 with dims d[0..rank) and returns
// its offset in *off. ERR_NOMEM; ERR_INTERNAL for a name longer than NN_NAME_MAX-1 or a
// duplicate name.
int nn_add(nn_net *net, size_t *off, nn_kind kind, nn_init init, int fan_in, int rank,
           const int *d, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
// Reserves `per_sample * max_batch + fixed` floats of activation memory (64-byte aligned) and
// returns its offset. Never fails (the arena is allocated later).
size_t nn_act(nn_net *net, size_t per_sample, size_t fixed);
// nn_act for the gradient of an activation (per_sample floats per image), also recorded for
// nn_zero_dacts. Never fails: when the record cannot be stored, net->build_err is set and
// nn_net_alloc fails with ERR_NOMEM.
size_t nn_dact(nn_net *net, size_t per_sample);
// Starts the scratch of a new module at offset 0.
void nn_scratch_begin(nn_net *net);
// Reserves per_sample * max_batch floats of the current module's scratch; returns its offset in
// the scratch region (resolve with nn_sptr). Never fails.
size_t nn_scratch(nn_net *net, size_t per_sample);
// Allocates the four arenas on the context's device; params, grads and buffers are zeroed.
// ERR_NOMEM (naming the arena and its size) or a device error.
int nn_net_alloc(nn_net *net);
// Frees the arenas and the table; the struct may be reused after nn_net_init.
void nn_net_free(nn_net *net);
// Makes `net` read the parameters and buffers of `owner` (the same table, the same device;
// owner must outlive it): its own are freed, its gradients and activations stay its own. For
// replicas that compute slices of a batch on other threads (unet.c). Never fails.
void nn_net_share_params(nn_net *net, const nn_net *owner);

// Device pointer of activation offset `off` (host arithmetic only).
static inline float *nn_ptr(const nn_net *net, size_t off) { return net->acts + off; }
// Zeroes every registered activation gradient for n images (before a backward). Op errors.
int nn_zero_dacts(nn_net *net, int n);
// Device pointer of scratch offset `off`.
static inline float *nn_sptr(const nn_net *net, size_t off) { return net->acts + net->scratch_at + off; }
// Zeroes the first `floats` floats of the scratch region (a module's whole scratch). Op errors.
int nn_scratch_zero(nn_net *net, size_t floats);

// --- access -------------------------------------------------------------------------------

// The entry called `name`, or NULL. Borrowed from the net.
const nn_entry *nn_entry_find(const nn_net *net, const char *name);
// Device pointer to the data of `e` (in params or buffers).
float *nn_entry_data(const nn_net *net, const nn_entry *e);
// Device pointer to the tensor called `name` (parameter or buffer), or NULL when absent.
float *nn_param_find(const nn_net *net, const char *name);
// Device pointer to the gradient of parameter `name`, or NULL (absent, or a buffer).
float *nn_grad_find(const nn_net *net, const char *name);
// Copies numel host floats into the tensor `name`. ERR_NOTFOUND (no such name), ERR_INPUT (numel
// differs from the entry's), or a device error; messages name the tensor.
int nn_param_set(nn_net *net, const char *name, const float *host, size_t numel);
// Copies the tensor `name` into numel host floats. Errors as nn_param_set.
int nn_param_get(const nn_net *net, const char *name, float *host, size_t numel);
// Formats e's shape as "[128, 3, 3, 3]" into buf (cap bytes). Returns buf.
const char *nn_shape_str(const nn_entry *e, char *buf, size_t cap);

// --- whole-network operations ------------------------------------------------------------------

// PyTorch's default initialisation of every entry (see nn_init), drawn from the Philox stream
// `seed` on the host and uploaded (a one-off, not in a step). ERR_NOMEM, device errors.
int nn_init_default(nn_net *net, uint64_t seed);
// grads = 0. Op errors.
int nn_zero_grad(nn_net *net);

// --- layer helpers (explicit forward/backward pairs over ops.h) --------------------------------

// A convolution: weight and bias offsets into params/grads (bias SIZE_MAX = none) and its
// geometry with s.n set at run time.
typedef struct {
    size_t w, b;
    ops_conv_shape s;
} nn_conv;
// A linear layer (in -> out), PyTorch layout w (out, in).
typedef struct {
    size_t w, b;
    int in, out;
} nn_linear;

// Registers "<prefix>.weight" (c_out, c_in, k, k) and, when bias, "<prefix>.bias" (c_out), with
// the geometry for an h x w input. ERR_NOMEM, ERR_INTERNAL.
int nn_conv_add(nn_net *net, nn_conv *cv, const char *prefix, int c_in, int c_out, int k, int stride,
                int pad_t, int pad_l, int pad_b, int pad_r, int h, int w, int bias);
// y (n, c_out, ho, wo) = conv(x). Op errors.
int nn_conv_fwd(nn_net *net, const nn_conv *cv, int n, float *y, const float *x);
// dx += conv_transpose(dy) when dx is not NULL; dw, db += .... Op errors.
int nn_conv_bwd(nn_net *net, const nn_conv *cv, int n, float *dx, const float *dy, const float *x);
// Registers "<prefix>.weight" (out, in) and "<prefix>.bias" (out).
int nn_linear_add(nn_net *net, nn_linear *l, const char *prefix, int in, int out);
int nn_linear_fwd(nn_net *net, const nn_linear *l, int n, float *y, const float *x);
int nn_linear_bwd(nn_net *net, const nn_linear *l, int n, float *dx, const float *dy, const float *x);

#endif
