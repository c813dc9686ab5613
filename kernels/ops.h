// ops: the one backend-neutral compute API the networks see (ARCHITECTURE.md, "Backends").
//
// All tensors are float32, NCHW, contiguous, in the memory of the context's device (host memory
// for the CPU backend, device memory for CUDA): allocate them with ops_alloc. Integer inputs
// (labels, ids) are int32 in device memory too. Scalars (lr, eps, ...) are host values.
//
// Conventions, the same for every backend:
// * Forward ops ASSIGN their outputs.
// * Backward ops ACCUMULATE into every gradient they produce (dx += ..., dw += ..., llm.c
//   style): the caller zeroes gradient buffers once per step (ops_fill), and residual/skip
//   branches need no extra adds.
// * Every op returns 0 or a negative err.h code with a message (bad shape, device failure).
//   Bad VALUES in device memory (embedding ids, cross-entropy labels) are checked on the device:
//   the CPU reports them at the call, CUDA at the next synchronisation point of the context
//   (ops_download or ops_sync: ERR_INPUT naming the op and the first bad value), so that no op
//   waits for the GPU. Callers that must know read something back (every training step does).
// * ops_upload returns once the host buffer may be reused (CUDA: copied into pinned staging and
//   sent asynchronously); ops_download and ops_sync wait for the context's work.
// * Results are deterministic for a fixed backend and thread count.
//
// The op list below is an X-macro: X(name, (parameters), (argument names)). It generates the
// public functions `int ops_NAME(...)` (kernels/ops.c dispatches them to the context's backend)
// and the backend table `ops_backend` that every backend fills (kernels/backend.h). Adding an
// op means adding one line here and one function per backend.
#ifndef DIFFOOD_OPS_H
#define DIFFOOD_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/philox.h"

typedef enum { OPS_DEV_CPU, OPS_DEV_CUDA, OPS_DEV_COUNT } ops_device;
typedef enum { OPS_ACT_NONE, OPS_ACT_RELU, OPS_ACT_SWISH, OPS_ACT_COUNT } ops_act;

// Convolution geometry. Output size: ho = (h + pad_t + pad_b - kh) / stride + 1 (likewise wo).
// Asymmetric padding covers the UNet's Downsample (pad right and bottom by one, pad 0 elsewhere).
typedef struct {
    int n, c_in, h, w;         // input (N, C_in, H, W)
    int c_out, kh, kw, stride; // weight (C_out, C_in, KH, KW)
    int pad_t, pad_l, pad_b, pad_r;
} ops_conv_shape;

static inline int ops_conv_out_h(const ops_conv_shape *s) { return (s->h + s->pad_t + s->pad_b - s->kh) / s->stride + 1; }
static inline int ops_conv_out_w(const ops_conv_shape *s) { return (s->w + s->pad_l + s->pad_r - s->kw) / s->stride + 1; }

typedef struct ops_ctx ops_ctx;

// TF32 (CUDA only; the CPU backend ignores both): two switches, as PyTorch has them.
// * tf32: TF32 tensor-core math in cuDNN convolutions (torch.backends.cudnn.allow_tf32, on by
//   default). Never FP16 down-conversion (kernels/cuda/cuda_conv.cu).
// * tf32_matmul: TF32 in cuBLAS GEMMs, i.e. linear layers and attention
//   (torch.backends.cuda.matmul.allow_tf32, off by default).
// -1 (what ops_options_default gives) means: the environment variable DIFFOOD_CUDNN_TF32 or
// DIFFOOD_CUBLAS_TF32 (0 or 1) when set, else the default above; ops_ctx_create resolves it
// (ERR_USAGE for any other value of the variable). 0 or 1 set by the caller (parity checks) wins.
typedef struct {
    int threads;      // CPU threads (OpenMP and OpenBLAS); <= 0 = all cores
    int tf32;         // CUDA: TF32 in cuDNN convolutions (-1 environment/default, 0 off, 1 on)
    int tf32_matmul;  // CUDA: TF32 in cuBLAS GEMMs (-1 environment/default, 0 off, 1 on)
    int device_index; // CUDA device ordinal
} ops_options;

// Default options: all cores, both TF32 switches from the environment or PyTorch's defaults
// (convolutions on, GEMMs off), device 0.
ops_options ops_options_default(void);

// Creates a context for `dev` (OPS_DEV_CUDA loads lib/libdiffood_cuda.so next to the executable
// or from DIFFOOD_CUDA_LIB; failing that, or without a GPU, returns ERR_DEVICE with the reason).
// *out is owned by the caller; release with ops_ctx_destroy.
int ops_ctx_create(ops_ctx **out, ops_device dev, const ops_options *opt);
void ops_ctx_destroy(ops_ctx *ctx);
ops_device ops_ctx_device(const ops_ctx *ctx);
// The options the context was created with (threads as given: <= 0 means all cores).
ops_options ops_ctx_options(const ops_ctx *ctx);
// CPU threads the context computes with (the resolved --threads: >= 1); 1 for CUDA.
int ops_ctx_threads(const ops_ctx *ctx);
// Parses "auto", "cpu", "cuda" into a context: auto uses CUDA when a GPU can be opened, the CPU
// otherwise, with a warning (log_warn) naming what failed, unless there is simply no CUDA here (no
// backend built, no GPU, no NVIDIA driver: a debug line then). ERR_USAGE for any other word (and
// for a bad DIFFOOD_CUDNN_TF32 / DIFFOOD_CUBLAS_TF32), ERR_DEVICE for "cuda" without a usable GPU.
int ops_ctx_create_named(ops_ctx **out, const char *name, const ops_options *opt);
const char *ops_device_name(ops_device dev);

#define OPS_LIST(X)                                                                                 \
    /* --- memory: bytes in the context's device memory ------------------------------------- */ \
    X(alloc, (ops_ctx * ctx, void **p, size_t bytes), (ctx, p, bytes))                             \
    X(free, (ops_ctx * ctx, void *p), (ctx, p))                                                    \
    X(upload, (ops_ctx * ctx, void *dst, const void *host_src, size_t bytes), (ctx, dst, host_src, bytes)) \
    X(download, (ops_ctx * ctx, void *host_dst, const void *src, size_t bytes), (ctx, host_dst, src, bytes)) \
    X(copy, (ops_ctx * ctx, void *dst, const void *src, size_t bytes), (ctx, dst, src, bytes))     \
    X(sync, (ops_ctx * ctx), (ctx))                                                                \
    /* --- elementwise (n elements) ------------------------------------------------------- */    \
    /* y[i] = v */                                                                                 \
    X(fill, (ops_ctx * ctx, float *y, float v, size_t n), (ctx, y, v, n))                          \
    /* y[i] = a[i] + b[i] (y may alias a or b) */                                                  \
    X(add, (ops_ctx * ctx, float *y, const float *a, const float *b, size_t n), (ctx, y, a, b, n))  \
    /* y[i] = alpha * y[i] */                                                                      \
    X(scale, (ops_ctx * ctx, float *y, float alpha, size_t n), (ctx, y, alpha, n))                 \
    /* y[i] += alpha * x[i] */                                                                     \
    X(axpy, (ops_ctx * ctx, float *y, float alpha, const float *x, size_t n), (ctx, y, alpha, x, n)) \
    /* y[i] = a * x[i] + b * z[i] (DDIM updates, noising) */                                       \
    X(axpby, (ops_ctx * ctx, float *y, float a, const float *x, float b, const float *z, size_t n), (ctx, y, a, x, b, z, n)) \
    /* per row: y[r, j] = a[r] * x[r, j] + b[r] * z[r, j] for r < rows, j < per; a and b are HOST */ \
    /* arrays of rows coefficients (noising a batch with one timestep per image in one launch); */ \
    /* the same numbers as one axpby per row */                                                     \
    X(axpby_rows, (ops_ctx * ctx, float *y, const float *a, const float *x, const float *b, const float *z, int rows, size_t per), (ctx, y, a, x, b, z, rows, per)) \
    /* y = act(x); y may alias x */                                                                \
    X(act_fwd, (ops_ctx * ctx, ops_act act, float *y, const float *x, size_t n), (ctx, act, y, x, n)) \
    /* dx += dy * act'(x) */                                                                       \
    X(act_bwd, (ops_ctx * ctx, ops_act act, float *dx, const float *dy, const float *x, size_t n), (ctx, act, dx, dy, x, n)) \
    /* --- convolution and linear ---------------------------------------------------------- */  \
    /* y (N, C_out, HO, WO) = conv(x (N, C_in, H, W), w (C_out, C_in, KH, KW)) + b (C_out) or no bias when NULL */ \
    X(conv2d_fwd, (ops_ctx * ctx, const ops_conv_shape *s, float *y, const float *x, const float *w, const float *b), (ctx, s, y, x, w, b)) \
    /* dx (N, C_in, H, W) += conv_transpose(dy, w) */                                              \
    X(conv2d_bwd_data, (ops_ctx * ctx, const ops_conv_shape *s, float *dx, const float *dy, const float *w), (ctx, s, dx, dy, w)) \
    /* dw += dy (x) x; db (C_out) += sum of dy over N, HO, WO (db may be NULL) */                  \
    X(conv2d_bwd_weight, (ops_ctx * ctx, const ops_conv_shape *s, float *dw, float *db, const float *dy, const float *x), (ctx, s, dw, db, dy, x)) \
    /* y (N, OUT) = x (N, IN) w^T (OUT, IN) + b (OUT) or no bias when NULL */                      \
    X(linear_fwd, (ops_ctx * ctx, float *y, const float *x, const float *w, const float *b, int n, int in, int out), (ctx, y, x, w, b, n, in, out)) \
    /* dx += dy w; dw += dy^T x; db += sum_n dy (dx, db may be NULL) */                            \
    X(linear_bwd, (ops_ctx * ctx, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int n, int in, int out), (ctx, dx, dw, db, dy, x, w, n, in, out)) \
    /* Row-major batched GEMM: c[b] = alpha * op(a[b]) op(b[b]) + beta * c[b], op(a) (M, K), op(b) (K, N); */ \
    /* a[b] starts at a + b * M*K (stored (M,K), or (K,M) when ta), b likewise, c at c + b * M*N. */ \
    X(bmm, (ops_ctx * ctx, float *c, const float *a, const float *b, int batch, int m, int n, int k, int ta, int tb, float alpha, float beta), (ctx, c, a, b, batch, m, n, k, ta, tb, alpha, beta)) \
    /* --- normalisation ------------------------------------------------------------------- */  \
    /* y (N, C, HW) = act(GroupNorm(x) * gamma + beta); mean, rstd (N, G) saved for backward */   \
    X(groupnorm_fwd, (ops_ctx * ctx, ops_act act, float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta, int n, int c, int hw, int groups, float eps), (ctx, act, y, mean, rstd, x, gamma, beta, n, c, hw, groups, eps)) \
    /* dx += ..., dgamma += ..., dbeta += ... (recomputes the pre-activation from x, mean, rstd) */ \
    X(groupnorm_bwd, (ops_ctx * ctx, ops_act act, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, const float *beta, int n, int c, int hw, int groups), (ctx, act, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, beta, n, c, hw, groups)) \
    /* Training BatchNorm: batch statistics; mean, rstd (C) saved; running_mean/var (C) updated */ \
    /* with momentum (PyTorch: r = (1-m) r + m * stat, the variance unbiased); y = act(bn(x)) */  \
    X(batchnorm_fwd_train, (ops_ctx * ctx, ops_act act, float *y, float *mean, float *rstd, float *running_mean, float *running_var, const float *x, const float *gamma, const float *beta, int n, int c, int hw, float momentum, float eps), (ctx, act, y, mean, rstd, running_mean, running_var, x, gamma, beta, n, c, hw, momentum, eps)) \
    /* Eval BatchNorm from running statistics: y = act(bn(x)) */                                  \
    X(batchnorm_fwd_eval, (ops_ctx * ctx, ops_act act, float *y, const float *x, const float *gamma, const float *beta, const float *running_mean, const float *running_var, int n, int c, int hw, float eps), (ctx, act, y, x, gamma, beta, running_mean, running_var, n, c, hw, eps)) \
    /* Backward of the training forward: dx, dgamma, dbeta accumulate */                          \
    X(batchnorm_bwd, (ops_ctx * ctx, ops_act act, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, const float *beta, int n, int c, int hw), (ctx, act, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, beta, n, c, hw)) \
    /* Sync BatchNorm: the training forward and backward cut at their per-channel reductions, */ \
    /* for replicas that each hold a slice of the batch (common/nn/resnet.c). */                  \
    /* part (2, C) = [mean, sum of squared deviations from it] of the slice's n*hw values */      \
    X(batchnorm_stats, (ops_ctx * ctx, float *part, const float *x, int n, int c, int hw), (ctx, part, x, n, c, hw)) \
    /* mean, var (biased), rstd (C) of the union of r slices: parts (r, 2, C) from batchnorm_stats, */ \
    /* counts[s] (host) the values per channel of slice s, combined in slice order (Chan et al.); */ \
    /* rstd = 1/sqrt(var + eps) of the float var, the normalisation batchnorm_fwd_eval(mean, var) */ \
    /* applies; running_mean/var (may be NULL) updated as by batchnorm_fwd_train; var may be NULL */ \
    X(batchnorm_stats_merge, (ops_ctx * ctx, float *mean, float *var, float *rstd, float *running_mean, float *running_var, const float *parts, const int *counts, int r, int c, float momentum, float eps), (ctx, mean, var, rstd, running_mean, running_var, parts, counts, r, c, momentum, eps)) \
    /* sums (2, C) = [sum of g, sum of g * xhat] over the slice (assigned), g = dy * act'(bn(x)): */ \
    /* summed over the slices, what batchnorm_bwd adds to dbeta and dgamma */                    \
    X(batchnorm_bwd_sums, (ops_ctx * ctx, ops_act act, float *sums, const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, const float *beta, int n, int c, int hw), (ctx, act, sums, dy, x, mean, rstd, gamma, beta, n, c, hw)) \
    /* dx += batchnorm_bwd's dx of the slice, from sums (2, C) over the whole batch of count */   \
    /* values per channel */                                                                       \
    X(batchnorm_bwd_dx, (ops_ctx * ctx, ops_act act, float *dx, const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, const float *beta, const float *sums, int count, int n, int c, int hw), (ctx, act, dx, dy, x, mean, rstd, gamma, beta, sums, count, n, c, hw)) \
    /* --- shape ops ----------------------------------------------------------------------- */  \
    /* y[n, c, :] += bias[n, c] for y (N, C, HW), bias (N, C) (the UNet's time embedding) */       \
    X(add_channel_bias, (ops_ctx * ctx, float *y, const float *bias, int n, int c, int hw), (ctx, y, bias, n, c, hw)) \
    /* dbias (N, C) += sum over HW of dy (N, C, HW); also global average pooling's adjoint base */ \
    X(channel_sum, (ops_ctx * ctx, float *dbias, const float *dy, int n, int c, int hw), (ctx, dbias, dy, n, c, hw)) \
    /* y (N, CA+CB, HW) = concat(a (N, CA, HW), b (N, CB, HW)) on channels */                      \
    X(concat_fwd, (ops_ctx * ctx, float *y, const float *a, const float *b, int n, int ca, int cb, int hw), (ctx, y, a, b, n, ca, cb, hw)) \
    /* da += dy[:, :CA], db += dy[:, CA:] */                                                       \
    X(concat_bwd, (ops_ctx * ctx, float *da, float *db, const float *dy, int n, int ca, int cb, int hw), (ctx, da, db, dy, n, ca, cb, hw)) \
    /* y (N, C, 2H, 2W) = nearest x2 of x (N, C, H, W) */                                          \
    X(upsample2x_fwd, (ops_ctx * ctx, float *y, const float *x, int n, int c, int h, int w), (ctx, y, x, n, c, h, w)) \
    /* dx += sum of the 2x2 block of dy */                                                         \
    X(upsample2x_bwd, (ops_ctx * ctx, float *dx, const float *dy, int n, int c, int h, int w), (ctx, dx, dy, n, c, h, w)) \
    /* y (N, C) = mean over HW of x (N, C, HW) */                                                  \
    X(avgpool_fwd, (ops_ctx * ctx, float *y, const float *x, int n, int c, int hw), (ctx, y, x, n, c, hw)) \
    /* dx += dy / HW broadcast */                                                                  \
    X(avgpool_bwd, (ops_ctx * ctx, float *dx, const float *dy, int n, int c, int hw), (ctx, dx, dy, n, c, hw)) \
    /* --- softmax, embeddings ------------------------------------------------------------- */  \
    /* y (ROWS, COLS) = softmax(scale * x) along each row */                                       \
    X(softmax_fwd, (ops_ctx * ctx, float *y, const float *x, int rows, int cols, float scale), (ctx, y, x, rows, cols, scale)) \
    /* dx += scale * y * (dy - sum(dy * y)) */                                                     \
    X(softmax_bwd, (ops_ctx * ctx, float *dx, const float *dy, const float *y, int rows, int cols, float scale), (ctx, dx, dy, y, rows, cols, scale)) \
    /* y (N, DIM) = table[ids[i]] for table (ROWS, DIM); an id outside 0..ROWS-1 is ERR_INPUT */  \
    X(embedding_fwd, (ops_ctx * ctx, float *y, const float *table, const int32_t *ids, int n, int rows, int dim), (ctx, y, table, ids, n, rows, dim)) \
    /* dtable[ids[i]] += dy[i] */                                                                  \
    X(embedding_bwd, (ops_ctx * ctx, float *dtable, const float *dy, const int32_t *ids, int n, int rows, int dim), (ctx, dtable, dy, ids, n, rows, dim)) \
    /* Sinusoidal timestep embedding, METHOD.md 4: y (N, DIM) = [sin(t f_k), cos(t f_k)], */       \
    /* half = DIM/2, f_k = exp(-k ln(10000) / (half - 1)); t (N) float */                          \
    X(timestep_embedding, (ops_ctx * ctx, float *y, const float *t, int n, int dim), (ctx, y, t, n, dim)) \
    /* --- randomness (Philox4x32-10, kernels/philox.h; identical numbers on every backend) --- */ \
    /* y[i] = standard normal number (offset + i) of the stream `key` */                          \
    X(randn, (ops_ctx * ctx, float *y, size_t n, philox_key key, uint64_t offset), (ctx, y, n, key, offset)) \
    /* Inverted dropout: y[i] = x[i] / (1-p) when uniform (offset + i) of `key` >= p, else 0 */   \
    X(dropout_fwd, (ops_ctx * ctx, float *y, const float *x, size_t n, float p, philox_key key, uint64_t offset), (ctx, y, x, n, p, key, offset)) \
    /* dx += the same mask (recomputed from key, offset) applied to dy */                         \
    X(dropout_bwd, (ops_ctx * ctx, float *dx, const float *dy, size_t n, float p, philox_key key, uint64_t offset), (ctx, dx, dy, n, p, key, offset)) \
    /* --- losses (the loss is written to a one-float device buffer) -------------------------- */ \
    /* loss = (1/N) sum (pred - target)^2 over N x PER; dpred = 2 (pred - target) / N (assigned) */ \
    X(mse_sum_loss, (ops_ctx * ctx, float *loss, float *dpred, const float *pred, const float *target, int n, int per), (ctx, loss, dpred, pred, target, n, per)) \
    /* loss = mean cross-entropy of softmax(logits (N, K)) with labels (N); dlogits assigned */   \
    X(softmax_xent_loss, (ops_ctx * ctx, float *loss, float *dlogits, const float *logits, const int32_t *labels, int n, int k), (ctx, loss, dlogits, logits, labels, n, k)) \
    /* --- optimisation (flat parameter / gradient arenas of N floats) ------------------------ */ \
    /* out[0] = sum of x[i]^2 (for the global gradient norm) */                                    \
    X(sumsq, (ops_ctx * ctx, float *out, const float *x, size_t n), (ctx, out, x, n))              \
    /* PyTorch AdamW step `step` (1-based) with bias correction and decoupled weight decay */      \
    X(adamw, (ops_ctx * ctx, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2, float eps, float wd, int step), (ctx, p, g, m, v, n, lr, beta1, beta2, eps, wd, step)) \
    /* PyTorch SGD: g' = g + wd p; buf = mom buf + g'; g' = g' + mom buf (nesterov) or buf; p -= lr g' */ \
    X(sgd, (ops_ctx * ctx, float *p, const float *g, float *buf, size_t n, float lr, float momentum, float wd, int nesterov), (ctx, p, g, buf, n, lr, momentum, wd, nesterov)) \
    /* ema = decay * ema + (1 - decay) * p */                                                      \
    X(ema, (ops_ctx * ctx, float *ema, const float *p, size_t n, float decay), (ctx, ema, p, n, decay))

#define OPS_DECLARE(op, params, args) int ops_##op params;
OPS_LIST(OPS_DECLARE)
#undef OPS_DECLARE

#endif
