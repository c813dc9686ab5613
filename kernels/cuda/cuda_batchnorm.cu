// cuda_batchnorm: training BatchNorm (batch statistics, running statistics with PyTorch's
// momentum convention and unbiased variance), eval BatchNorm, and the backward, each with the
// fused activation. A channel's N*HW values are reduced by a (slices, C) grid of blocks
// (cuda_slices): per-slice count/mean/M2 (two passes over the slice, in double), combined per
// channel in slice order with Chan's formula; then one elementwise pass. Deterministic, no atomics.
#include <math.h>

#include "kernels/bn_merge.h"
#include "kernels/cuda/cuda_internal.h"

#define BN_THREADS 256

__device__ __forceinline__ float cuda_bn_gamma(const float *g, int c) { return g ? g[c] : 1.f; }
__device__ __forceinline__ float cuda_bn_beta(const float *b, int c) { return b ? b[c] : 0.f; }

// --- forward -----------------------------------------------------------------------------------

// part[(ch * slices + s) * 3 + {0, 1, 2}] = count, mean, M2 of slice s of channel ch.
__global__ void cuda_bn_stats_k(double *part, const float *x, int c, int hw, size_t cnt, size_t len) {
    __shared__ double sh[BN_THREADS];
    int s = blockIdx.x, ch = blockIdx.y;
    size_t lo = (size_t)s * len, hi = lo + len < cnt ? lo + len : cnt;
    double k = hi > lo ? (double)(hi - lo) : 0.0;
    double acc = 0.0;
    for (size_t j = lo + threadIdx.x; j < hi; j += blockDim.x) acc += x[cuda_chan_index(j, ch, c, hw)];
    double tot = cuda_block_sum(acc, sh);
    double mu = k > 0 ? tot / k : 0.0;
    acc = 0.0;
    for (size_t j = lo + threadIdx.x; j < hi; j += blockDim.x) {
        double d = x[cuda_chan_index(j, ch, c, hw)] - mu;
        acc += d * d;
    }
    double m2 = cuda_block_sum(acc, sh);
    if (threadIdx.x == 0) {
        double *p = part + ((size_t)ch * gridDim.x + s) * 3;
        p[0] = k;
        p[1] = mu;
        p[2] = m2;
    }
}

// Chan's combination of channel ch's slices (count, mean, M2) in slice order: mean and M2.
__device__ void cuda_bn_chan(const double *part, int ch, int slices, double *mean, double *m2) {
    double na = 0.0, ma = 0.0, mm = 0.0;
    for (int s = 0; s < slices; s++) {
        const double *p = part + ((size_t)ch * slices + s) * 3;
        double nb = p[0];
        if (nb <= 0) continue;
        double nt = na + nb, d = p[1] - ma;
        ma += d * nb / nt;
        mm += p[2] + d * d * na * nb / nt;
        na = nt;
    }
    *mean = ma;
    *m2 = mm;
}

// One thread per channel: combine the slices, write mean, rstd and the running statistics.
__global__ void cuda_bn_combine_k(float *mean, float *rstd, float *running_mean, float *running_var,
                                  const double *part, int c, int slices, size_t cnt, float momentum, float eps) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double ma, m2;
    cuda_bn_chan(part, ch, slices, &ma, &m2);
    double var = m2 / (double)cnt;
    float m = (float)ma;
    mean[ch] = m;
    rstd[ch] = (float)(1.0 / sqrt(var + (double)eps));
    double unb = cnt > 1 ? m2 / (double)(cnt - 1) : var;
    if (running_mean) running_mean[ch] = (1.f - momentum) * running_mean[ch] + momentum * m;
    if (running_var) running_var[ch] = (1.f - momentum) * running_var[ch] + momentum * (float)unb;
}

__global__ void cuda_bn_apply_k(ops_act act, float *y, const float *x, const float *mean, const float *rstd,
                                const float *gamma, const float *beta, size_t total, int c, int hw) {
    CUDA_GRID_STRIDE(i, total) {
        int ch = (int)((i / (size_t)hw) % (size_t)c);
        y[i] = cuda_act(act, (x[i] - mean[ch]) * rstd[ch] * cuda_bn_gamma(gamma, ch) + cuda_bn_beta(beta, ch));
    }
}

__global__ void cuda_batchnorm_eval_k(ops_act act, float *y, const float *x, const float *gamma, const float *beta,
                                      const float *running_mean, const float *running_var, size_t total, int c,
                                      int hw, float eps) {
    CUDA_GRID_STRIDE(i, total) {
        int ch = (int)((i / (size_t)hw) % (size_t)c);
        float r = 1.f / sqrtf(running_var[ch] + eps);
        y[i] = cuda_act(act, (x[i] - running_mean[ch]) * r * cuda_bn_gamma(gamma, ch) + cuda_bn_beta(beta, ch));
    }
}

// --- backward ----------------------------------------------------------------------------------

// part[(ch * slices + s) * 2 + {0, 1}] = sum of gz, sum of gz * xhat over slice s of channel ch.
__global__ void cuda_bn_bwd_part_k(double *part, ops_act act, const float *dy, const float *x, const float *mean,
                                   const float *rstd, const float *gamma, const float *beta, int c, int hw, size_t cnt,
                                   size_t len) {
    __shared__ double sh[BN_THREADS];
    int s = blockIdx.x, ch = blockIdx.y;
    float m = mean[ch], r = rstd[ch], gm = cuda_bn_gamma(gamma, ch), bt = cuda_bn_beta(beta, ch);
    size_t lo = (size_t)s * len, hi = lo + len < cnt ? lo + len : cnt;
    double a1 = 0.0, a2 = 0.0;
    for (size_t j = lo + threadIdx.x; j < hi; j += blockDim.x) {
        size_t idx = cuda_chan_index(j, ch, c, hw);
        float xh = (x[idx] - m) * r;
        float gz = dy[idx] * cuda_act_grad(act, xh * gm + bt);
        a1 += gz;
        a2 += (double)gz * xh;
    }
    double sb = cuda_block_sum(a1, sh), sg = cuda_block_sum(a2, sh);
    if (threadIdx.x == 0) {
        part[((size_t)ch * gridDim.x + s) * 2] = sb;
        part[((size_t)ch * gridDim.x + s) * 2 + 1] = sg;
    }
}

// Channel ch's sums of gz and of gz * xhat over its slices, in slice order.
__device__ void cuda_bn_slice_sums(const double *part, int ch, int slices, double *sb, double *sg) {
    double a = 0.0, b = 0.0;
    for (int s = 0; s < slices; s++) {
        a += part[((size_t)ch * slices + s) * 2];
        b += part[((size_t)ch * slices + s) * 2 + 1];
    }
    *sb = a;
    *sg = b;
}

// One thread per channel: dgamma, dbeta += the sums; coef[ch] = (mean of gz, mean of gz * xhat).
__global__ void cuda_bn_bwd_combine_k(double *coef, float *dgamma, float *dbeta, const double *part, int c, int slices,
                                      size_t cnt) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double sb, sg;
    cuda_bn_slice_sums(part, ch, slices, &sb, &sg);
    if (dgamma) dgamma[ch] += (float)sg;
    if (dbeta) dbeta[ch] += (float)sb;
    coef[2 * ch] = sb / (double)cnt;
    coef[2 * ch + 1] = sg / (double)cnt;
}

__global__ void cuda_bn_bwd_dx_k(ops_act act, float *dx, const float *dy, const float *x, const float *mean,
                                 const float *rstd, const float *gamma, const float *beta, const double *coef,
                                 size_t total, int c, int hw) {
    CUDA_GRID_STRIDE(i, total) {
        int ch = (int)((i / (size_t)hw) % (size_t)c);
        float r = rstd[ch], gm = cuda_bn_gamma(gamma, ch);
        float xh = (x[i] - mean[ch]) * r;
        float gz = dy[i] * cuda_act_grad(act, xh * gm + cuda_bn_beta(beta, ch));
        dx[i] += (float)((double)gm * r * ((double)gz - coef[2 * ch] - (double)xh * coef[2 * ch + 1]));
    }
}

// --- sync BatchNorm (the training passes cut at their reductions; see kernels/ops.h) ------------

// One thread per channel: out (2, C) = mean, M2 of the combined slices.
__global__ void cuda_bn_part_k(float *out, const double *part, int c, int slices) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double ma, m2;
    cuda_bn_chan(part, ch, slices, &ma, &m2);
    out[ch] = (float)ma;
    out[c + ch] = (float)m2;
}

#define BN_MAX_PARTS 256
typedef struct {
    int v[BN_MAX_PARTS];
} cuda_bn_counts;

// One thread per channel: Chan's combination of r float parts (r, 2, C) (kernels/bn_merge.h,
// shared with the CPU backend).
__global__ void cuda_bn_merge_k(float *mean, float *var, float *rstd, float *running_mean, float *running_var,
                                const float *parts, cuda_bn_counts counts, int r, int c, double total, float momentum,
                                float eps) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    bn_merge_chan(parts, counts.v, r, c, ch, total, momentum, eps, mean, var, rstd, running_mean, running_var);
}

// One thread per channel: sums (2, C) of the slices' (sum g, sum g * xhat).
__global__ void cuda_bn_sums_k(float *sums, const double *part, int c, int slices) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double sb, sg;
    cuda_bn_slice_sums(part, ch, slices, &sb, &sg);
    sums[ch] = (float)sb;
    sums[c + ch] = (float)sg;
}

// One thread per channel: coef as cuda_bn_bwd_combine_k writes it, from the whole batch's sums.
__global__ void cuda_bn_coef_k(double *coef, const float *sums, int c, int count) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    coef[2 * ch] = (double)sums[ch] / (double)count;
    coef[2 * ch + 1] = (double)sums[c + ch] / (double)count;
}

// --- ops ---------------------------------------------------------------------------------------

#define BN_CHECK(op)                                                                             \
    CUDA_SHAPE_IF(n <= 0 || c <= 0 || hw <= 0 || c > 65535, op ": bad shape n %d, c %d, hw %d", n, c, hw); \
    CUDA_SHAPE_IF(act < 0 || act >= OPS_ACT_COUNT, op ": unknown activation %d", (int)act)

int cuda_batchnorm_fwd_train(ops_ctx *ctx, ops_act act, float *y, float *mean, float *rstd, float *running_mean,
                             float *running_var, const float *x, const float *gamma, const float *beta, int n, int c,
                             int hw, float momentum, float eps) {
    BN_CHECK("batchnorm_fwd_train");
    size_t cnt = (size_t)n * hw, total = cnt * c;
    cuda_slices sl = cuda_slices_for(cnt);
    void *ws;
    CUDA_TRY(cuda_workspace(ctx, (size_t)c * sl.count * 3 * sizeof(double), &ws));
    cudaStream_t st = CUDA_STREAM(ctx);
    cuda_bn_stats_k<<<dim3((unsigned)sl.count, (unsigned)c), BN_THREADS, 0, st>>>((double *)ws, x, c, hw, cnt, sl.len);
    CUDA_LAUNCHED("cuda_bn_stats_k");
    cuda_bn_combine_k<<<(unsigned)((c + 127) / 128), 128, 0, st>>>(mean, rstd, running_mean, running_var,
                                                                   (const double *)ws, c, sl.count, cnt, momentum, eps);
    CUDA_LAUNCHED("cuda_bn_combine_k");
    cuda_bn_apply_k<<<cuda_blocks(total), CUDA_THREADS, 0, st>>>(act, y, x, mean, rstd, gamma, beta, total, c, hw);
    CUDA_LAUNCHED("cuda_bn_apply_k");
    return 0;
}

int cuda_batchnorm_fwd_eval(ops_ctx *ctx, ops_act act, float *y, const float *x, const float *gamma,
                            const float *beta, const float *running_mean, const float *running_var, int n, int c,
                            int hw, float eps) {
    BN_CHECK("batchnorm_fwd_eval");
    size_t total = (size_t)n * c * hw;
    cuda_batchnorm_eval_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(
        act, y, x, gamma, beta, running_mean, running_var, total, c, hw, eps);
    CUDA_LAUNCHED("cuda_batchnorm_eval_k");
    return 0;
}

int cuda_batchnorm_bwd(ops_ctx *ctx, ops_act act, float *dx, float *dgamma, float *dbeta, const float *dy,
                       const float *x, const float *mean, const float *rstd, const float *gamma, const float *beta,
                       int n, int c, int hw) {
    BN_CHECK("batchnorm_bwd");
    size_t cnt = (size_t)n * hw, total = cnt * c;
    cuda_slices sl = cuda_slices_for(cnt);
    size_t part_bytes = (size_t)c * sl.count * 2 * sizeof(double);
    void *ws;
    CUDA_TRY(cuda_workspace(ctx, part_bytes + (size_t)c * 2 * sizeof(double), &ws));
    double *part = (double *)ws, *coef = part + (size_t)c * sl.count * 2;
    cudaStream_t st = CUDA_STREAM(ctx);
    cuda_bn_bwd_part_k<<<dim3((unsigned)sl.count, (unsigned)c), BN_THREADS, 0, st>>>(part, act, dy, x, mean, rstd, gamma,
                                                                                      beta, c, hw, cnt, sl.len);
    CUDA_LAUNCHED("cuda_bn_bwd_part_k");
    cuda_bn_bwd_combine_k<<<(unsigned)((c + 127) / 128), 128, 0, st>>>(coef, dgamma, dbeta, part, c, sl.count, cnt);
    CUDA_LAUNCHED("cuda_bn_bwd_combine_k");
    if (dx) {
        cuda_bn_bwd_dx_k<<<cuda_blocks(total), CUDA_THREADS, 0, st>>>(act, dx, dy, x, mean, rstd, gamma, beta, coef,
                                                                      total, c, hw);
        CUDA_LAUNCHED("cuda_bn_bwd_dx_k");
    }
    return 0;
}

int cuda_batchnorm_stats(ops_ctx *ctx, float *part, const float *x, int n, int c, int hw) {
    ops_act act = OPS_ACT_NONE;
    BN_CHECK("batchnorm_stats");
    size_t cnt = (size_t)n * hw;
    cuda_slices sl = cuda_slices_for(cnt);
    void *ws;
    CUDA_TRY(cuda_workspace(ctx, (size_t)c * sl.count * 3 * sizeof(double), &ws));
    cudaStream_t st = CUDA_STREAM(ctx);
    cuda_bn_stats_k<<<dim3((unsigned)sl.count, (unsigned)c), BN_THREADS, 0, st>>>((double *)ws, x, c, hw, cnt, sl.len);
    CUDA_LAUNCHED("cuda_bn_stats_k");
    cuda_bn_part_k<<<(unsigned)((c + 127) / 128), 128, 0, st>>>(part, (const double *)ws, c, sl.count);
    CUDA_LAUNCHED("cuda_bn_part_k");
    return 0;
}

int cuda_batchnorm_stats_merge(ops_ctx *ctx, float *mean, float *var, float *rstd, float *running_mean,
                               float *running_var, const float *parts, const int *counts, int r, int c, float momentum,
                               float eps) {
    CUDA_SHAPE_IF(r < 1 || r > BN_MAX_PARTS || c < 1 || !counts,
                  "batchnorm_stats_merge: bad shape r %d (1..%d), c %d, counts %s", r, BN_MAX_PARTS, c,
                  counts ? "given" : "missing");
    cuda_bn_counts k;
    double total = 0.0;
    for (int s = 0; s < r; s++) {
        CUDA_SHAPE_IF(counts[s] < 1, "batchnorm_stats_merge: slice %d has %d values per channel", s, counts[s]);
        k.v[s] = counts[s];
        total += counts[s];
    }
    CUDA_SHAPE_IF(total < 2, "batchnorm_stats_merge: %.0f values per channel: training needs more than one", total);
    cuda_bn_merge_k<<<(unsigned)((c + 127) / 128), 128, 0, CUDA_STREAM(ctx)>>>(mean, var, rstd, running_mean, running_var,
                                                                             parts, k, r, c, total, momentum, eps);
    CUDA_LAUNCHED("cuda_bn_merge_k");
    return 0;
}

int cuda_batchnorm_bwd_sums(ops_ctx *ctx, ops_act act, float *sums, const float *dy, const float *x, const float *mean,
                            const float *rstd, const float *gamma, const float *beta, int n, int c, int hw) {
    BN_CHECK("batchnorm_bwd_sums");
    size_t cnt = (size_t)n * hw;
    cuda_slices sl = cuda_slices_for(cnt);
    void *ws;
    CUDA_TRY(cuda_workspace(ctx, (size_t)c * sl.count * 2 * sizeof(double), &ws));
    cudaStream_t st = CUDA_STREAM(ctx);
    cuda_bn_bwd_part_k<<<dim3((unsigned)sl.count, (unsigned)c), BN_THREADS, 0, st>>>((double *)ws, act, dy, x, mean, rstd,
                                                                                      gamma, beta, c, hw, cnt, sl.len);
    CUDA_LAUNCHED("cuda_bn_bwd_part_k");
    cuda_bn_sums_k<<<(unsigned)((c + 127) / 128), 128, 0, st>>>(sums, (const double *)ws, c, sl.count);
    CUDA_LAUNCHED("cuda_bn_sums_k");
    return 0;
}

int cuda_batchnorm_bwd_dx(ops_ctx *ctx, ops_act act, float *dx, const float *dy, const float *x, const float *mean,
                          const float *rstd, const float *gamma, const float *beta, const float *sums, int count, int n,
                          int c, int hw) {
    BN_CHECK("batchnorm_bwd_dx");
    CUDA_SHAPE_IF((size_t)count < (size_t)n * hw, "batchnorm_bwd_dx: count %d below the slice's %zu values per channel",
                  count, (size_t)n * hw);
    size_t total = (size_t)n * c * hw;
    void *ws;
    CUDA_TRY(cuda_workspace(ctx, (size_t)c * 2 * sizeof(double), &ws));
    cudaStream_t st = CUDA_STREAM(ctx);
    cuda_bn_coef_k<<<(unsigned)((c + 127) / 128), 128, 0, st>>>((double *)ws, sums, c, count);
    CUDA_LAUNCHED("cuda_bn_coef_k");
    cuda_bn_bwd_dx_k<<<cuda_blocks(total), CUDA_THREADS, 0, st>>>(act, dx, dy, x, mean, rstd, gamma, beta,
                                                                  (const double *)ws, total, c, hw);
    CUDA_LAUNCHED("cuda_bn_bwd_dx_k");
    return 0;
}
