// cuda_norm: GroupNorm with the fused activation, forward and backward (BatchNorm is in
// cuda_batchnorm.cu). Statistics are block reductions in double in a fixed order (one block per
// (sample, group)); parameter gradients are per-slice partial sums combined in slice order
// (cuda_slices): deterministic, no float atomics.
#include "kernels/cuda/cuda_internal.h"

#define NORM_THREADS 512

__device__ __forceinline__ float cuda_gamma(const float *g, int c) { return g ? g[c] : 1.f; }
__device__ __forceinline__ float cuda_beta(const float *b, int c) { return b ? b[c] : 0.f; }

// --- GroupNorm --------------------------------------------------------------------------------

// One block per (n, g): the group is the contiguous range of cpg * hw floats.
__global__ void cuda_groupnorm_fwd_k(ops_act act, float *y, float *mean, float *rstd, const float *x,
                                     const float *gamma, const float *beta, int c, int hw, int groups, float eps) {
    __shared__ double sh[NORM_THREADS];
    int ng = blockIdx.x, g = ng % groups;
    int cpg = c / groups;
    size_t cnt = (size_t)cpg * hw, base = (size_t)ng * cnt; // (n*G + g) * cpg*hw == (n*C + g*cpg) * hw
    const float *xs = x + base;
    double acc = 0.0;
    for (size_t j = threadIdx.x; j < cnt; j += blockDim.x) acc += xs[j];
    double mu = cuda_block_sum(acc, sh) / (double)cnt;
    acc = 0.0;
    for (size_t j = threadIdx.x; j < cnt; j += blockDim.x) {
        double d = xs[j] - mu;
        acc += d * d;
    }
    double var = cuda_block_sum(acc, sh) / (double)cnt;
    float m = (float)mu, r = (float)(1.0 / sqrt(var + (double)eps));
    if (threadIdx.x == 0) {
        mean[ng] = m;
        rstd[ng] = r;
    }
    for (size_t j = threadIdx.x; j < cnt; j += blockDim.x) {
        int ch = g * cpg + (int)(j / (size_t)hw);
        float z = (xs[j] - m) * r * cuda_gamma(gamma, ch) + cuda_beta(beta, ch);
        y[base + j] = cuda_act(act, z);
    }
}

// dx per (n, g) block.
__global__ void cuda_groupnorm_bwd_dx_k(ops_act act, float *dx, const float *dy, const float *x, const float *mean,
                                        const float *rstd, const float *gamma, const float *beta, int c, int hw,
                                        int groups) {
    __shared__ double sh[NORM_THREADS];
    int ng = blockIdx.x, g = ng % groups;
    int cpg = c / groups;
    size_t cnt = (size_t)cpg * hw, base = (size_t)ng * cnt;
    float m = mean[ng], r = rstd[ng];
    double a1 = 0.0, a2 = 0.0;
    for (size_t j = threadIdx.x; j < cnt; j += blockDim.x) {
        int ch = g * cpg + (int)(j / (size_t)hw);
        float gm = cuda_gamma(gamma, ch);
        float xh = (x[base + j] - m) * r;
        float t = dy[base + j] * cuda_act_grad(act, xh * gm + cuda_beta(beta, ch)) * gm;
        a1 += t;
        a2 += (double)t * xh;
    }
    double s1 = cuda_block_sum(a1, sh) / (double)cnt;
    double s2 = cuda_block_sum(a2, sh) / (double)cnt;
    for (size_t j = threadIdx.x; j < cnt; j += blockDim.x) {
        int ch = g * cpg + (int)(j / (size_t)hw);
        float gm = cuda_gamma(gamma, ch);
        float xh = (x[base + j] - m) * r;
        float t = dy[base + j] * cuda_act_grad(act, xh * gm + cuda_beta(beta, ch)) * gm;
        dx[base + j] += (float)((double)r * ((double)t - s1 - (double)xh * s2));
    }
}

// dgamma, dbeta: partial sums of gz * xhat and gz over slice blockIdx.x of channel blockIdx.y
// (cuda_slices), then combined per channel in slice order (deterministic).
__global__ void cuda_groupnorm_bwd_part_k(double *part, ops_act act, const float *dy, const float *x,
                                          const float *mean, const float *rstd, const float *gamma, const float *beta,
                                          int c, int hw, int groups, size_t cnt, size_t len) {
    __shared__ double sh[NORM_THREADS];
    int s = blockIdx.x, ch = blockIdx.y, g = ch / (c / groups);
    float gm = cuda_gamma(gamma, ch), bt = cuda_beta(beta, ch);
    size_t lo = (size_t)s * len, hi = lo + len < cnt ? lo + len : cnt;
    double ag = 0.0, ab = 0.0;
    for (size_t j = lo + threadIdx.x; j < hi; j += blockDim.x) {
        size_t b = j / (size_t)hw, idx = cuda_chan_index(j, ch, c, hw);
        float xh = (x[idx] - mean[b * groups + g]) * rstd[b * groups + g];
        float gz = dy[idx] * cuda_act_grad(act, xh * gm + bt);
        ag += (double)gz * xh;
        ab += gz;
    }
    double sg = cuda_block_sum(ag, sh), sb = cuda_block_sum(ab, sh);
    if (threadIdx.x == 0) {
        part[((size_t)ch * gridDim.x + s) * 2] = sg;
        part[((size_t)ch * gridDim.x + s) * 2 + 1] = sb;
    }
}

__global__ void cuda_groupnorm_bwd_param_k(float *dgamma, float *dbeta, const double *part, int c, int slices) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double sg = 0.0, sb = 0.0;
    for (int s = 0; s < slices; s++) {
        sg += part[((size_t)ch * slices + s) * 2];
        sb += part[((size_t)ch * slices + s) * 2 + 1];
    }
    if (dgamma) dgamma[ch] += (float)sg;
    if (dbeta) dbeta[ch] += (float)sb;
}

#define GN_CHECK(op)                                                                                        \
    CUDA_SHAPE_IF(n <= 0 || c <= 0 || hw <= 0 || groups <= 0 || c % groups || c > 65535, op ": bad shape n %d, c %d, hw %d, " \
                  "groups %d", n, c, hw, groups);                                                           \
    CUDA_SHAPE_IF(act < 0 || act >= OPS_ACT_COUNT, op ": unknown activation %d", (int)act)

int cuda_groupnorm_fwd(ops_ctx *ctx, ops_act act, float *y, float *mean, float *rstd, const float *x,
                       const float *gamma, const float *beta, int n, int c, int hw, int groups, float eps) {
    GN_CHECK("groupnorm_fwd");
    cuda_groupnorm_fwd_k<<<(unsigned)(n * groups), NORM_THREADS, 0, CUDA_STREAM(ctx)>>>(act, y, mean, rstd, x, gamma,
                                                                                        beta, c, hw, groups, eps);
    CUDA_LAUNCHED("cuda_groupnorm_fwd_k");
    return 0;
}

int cuda_groupnorm_bwd(ops_ctx *ctx, ops_act act, float *dx, float *dgamma, float *dbeta, const float *dy,
                       const float *x, const float *mean, const float *rstd, const float *gamma, const float *beta,
                       int n, int c, int hw, int groups) {
    GN_CHECK("groupnorm_bwd");
    if (dx) {
        cuda_groupnorm_bwd_dx_k<<<(unsigned)(n * groups), NORM_THREADS, 0, CUDA_STREAM(ctx)>>>(
            act, dx, dy, x, mean, rstd, gamma, beta, c, hw, groups);
        CUDA_LAUNCHED("cuda_groupnorm_bwd_dx_k");
    }
    if (dgamma || dbeta) {
        size_t cnt = (size_t)n * hw;
        cuda_slices sl = cuda_slices_for(cnt);
        void *ws;
        CUDA_TRY(cuda_workspace(ctx, (size_t)c * sl.count * 2 * sizeof(double), &ws));
        cuda_groupnorm_bwd_part_k<<<dim3((unsigned)sl.count, (unsigned)c), NORM_THREADS, 0, CUDA_STREAM(ctx)>>>(
            (double *)ws, act, dy, x, mean, rstd, gamma, beta, c, hw, groups, cnt, sl.len);
        CUDA_LAUNCHED("cuda_groupnorm_bwd_part_k");
        cuda_groupnorm_bwd_param_k<<<(unsigned)((c + 127) / 128), 128, 0, CUDA_STREAM(ctx)>>>(dgamma, dbeta,
                                                                                             (const double *)ws, c,
                                                                                             sl.count);
        CUDA_LAUNCHED("cuda_groupnorm_bwd_param_k");
    }
    return 0;
}
