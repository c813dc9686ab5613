// cuda_norm: GroupNorm and BatchNorm (train and eval) with the fused activation, forward and
// backward. Statistics and parameter-gradient sums are block reductions in double in a fixed
// order (one block per (sample, group) or per channel): deterministic, no float atomics.
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

// dgamma, dbeta per channel block (over n and hw).
__global__ void cuda_groupnorm_bwd_param_k(ops_act act, float *dgamma, float *dbeta, const float *dy, const float *x,
                                           const float *mean, const float *rstd, const float *gamma,
                                           const float *beta, int n, int c, int hw, int groups) {
    __shared__ double sh[NORM_THREADS];
    int ch = blockIdx.x, g = ch / (c / groups);
    float gm = cuda_gamma(gamma, ch), bt = cuda_beta(beta, ch);
    size_t len = (size_t)n * hw;
    double ag = 0.0, ab = 0.0;
    for (size_t j = threadIdx.x; j < len; j += blockDim.x) {
        size_t b = j / (size_t)hw, p = j % (size_t)hw;
        size_t idx = (b * c + ch) * (size_t)hw + p;
        float xh = (x[idx] - mean[b * groups + g]) * rstd[b * groups + g];
        float gz = dy[idx] * cuda_act_grad(act, xh * gm + bt);
        ag += (double)gz * xh;
        ab += gz;
    }
    double sg = cuda_block_sum(ag, sh), sb = cuda_block_sum(ab, sh);
    if (threadIdx.x == 0) {
        if (dgamma) dgamma[ch] += (float)sg;
        if (dbeta) dbeta[ch] += (float)sb;
    }
}

#define GN_CHECK(op)                                                                                        \
    CUDA_SHAPE_IF(n <= 0 || c <= 0 || hw <= 0 || groups <= 0 || c % groups, op ": bad shape n %d, c %d, hw %d, " \
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
        cuda_groupnorm_bwd_param_k<<<(unsigned)c, NORM_THREADS, 0, CUDA_STREAM(ctx)>>>(
            act, dgamma, dbeta, dy, x, mean, rstd, gamma, beta, n, c, hw, groups);
        CUDA_LAUNCHED("cuda_groupnorm_bwd_param_k");
    }
    return 0;
}

// --- BatchNorm --------------------------------------------------------------------------------

__device__ __forceinline__ size_t cuda_bn_index(size_t j, int ch, int c, int hw) {
    return (j / (size_t)hw * c + ch) * (size_t)hw + j % (size_t)hw;
}

// One block per channel: batch statistics, running statistics, y.
__global__ void cuda_batchnorm_train_k(ops_act act, float *y, float *mean, float *rstd, float *running_mean,
                                       float *running_var, const float *x, const float *gamma, const float *beta,
                                       int n, int c, int hw, float momentum, float eps) {
    __shared__ double sh[NORM_THREADS];
    int ch = blockIdx.x;
    size_t cnt = (size_t)n * hw;
    double acc = 0.0;
    for (size_t j = threadIdx.x; j < cnt; j += blockDim.x) acc += x[cuda_bn_index(j, ch, c, hw)];
    double mu = cuda_block_sum(acc, sh) / (double)cnt;
    acc = 0.0;
    for (size_t j = threadIdx.x; j < cnt; j += blockDim.x) {
        double d = x[cuda_bn_index(j, ch, c, hw)] - mu;
        acc += d * d;
    }
    double ss = cuda_block_sum(acc, sh);
    double var = ss / (double)cnt;
    float m = (float)mu, r = (float)(1.0 / sqrt(var + (double)eps));
    if (threadIdx.x == 0) {
        mean[ch] = m;
        rstd[ch] = r;
        double unb = cnt > 1 ? ss / (double)(cnt - 1) : var;
        if (running_mean) running_mean[ch] = (1.f - momentum) * running_mean[ch] + momentum * m;
        if (running_var) running_var[ch] = (1.f - momentum) * running_var[ch] + momentum * (float)unb;
    }
    float gm = cuda_gamma(gamma, ch), bt = cuda_beta(beta, ch);
    for (size_t j = threadIdx.x; j < cnt; j += blockDim.x) {
        size_t idx = cuda_bn_index(j, ch, c, hw);
        y[idx] = cuda_act(act, (x[idx] - m) * r * gm + bt);
    }
}

__global__ void cuda_batchnorm_eval_k(ops_act act, float *y, const float *x, const float *gamma, const float *beta,
                                      const float *running_mean, const float *running_var, size_t total, int c,
                                      int hw, float eps) {
    CUDA_GRID_STRIDE(i, total) {
        int ch = (int)((i / (size_t)hw) % (size_t)c);
        float r = 1.f / sqrtf(running_var[ch] + eps);
        y[i] = cuda_act(act, (x[i] - running_mean[ch]) * r * cuda_gamma(gamma, ch) + cuda_beta(beta, ch));
    }
}

__global__ void cuda_batchnorm_bwd_k(ops_act act, float *dx, float *dgamma, float *dbeta, const float *dy,
                                     const float *x, const float *mean, const float *rstd, const float *gamma,
                                     const float *beta, int n, int c, int hw) {
    __shared__ double sh[NORM_THREADS];
    int ch = blockIdx.x;
    size_t cnt = (size_t)n * hw;
    float m = mean[ch], r = rstd[ch], gm = cuda_gamma(gamma, ch), bt = cuda_beta(beta, ch);
    double a1 = 0.0, a2 = 0.0;
    for (size_t j = threadIdx.x; j < cnt; j += blockDim.x) {
        size_t idx = cuda_bn_index(j, ch, c, hw);
        float xh = (x[idx] - m) * r;
        float gz = dy[idx] * cuda_act_grad(act, xh * gm + bt);
        a1 += gz;
        a2 += (double)gz * xh;
    }
    double sb = cuda_block_sum(a1, sh), sg = cuda_block_sum(a2, sh);
    if (threadIdx.x == 0) {
        if (dgamma) dgamma[ch] += (float)sg;
        if (dbeta) dbeta[ch] += (float)sb;
    }
    if (!dx) return;
    double mb = sb / (double)cnt, mg = sg / (double)cnt, k = (double)gm * r;
    for (size_t j = threadIdx.x; j < cnt; j += blockDim.x) {
        size_t idx = cuda_bn_index(j, ch, c, hw);
        float xh = (x[idx] - m) * r;
        float gz = dy[idx] * cuda_act_grad(act, xh * gm + bt);
        dx[idx] += (float)(k * ((double)gz - mb - (double)xh * mg));
    }
}

#define BN_CHECK(op)                                                                             \
    CUDA_SHAPE_IF(n <= 0 || c <= 0 || hw <= 0, op ": bad shape n %d, c %d, hw %d", n, c, hw);   \
    CUDA_SHAPE_IF(act < 0 || act >= OPS_ACT_COUNT, op ": unknown activation %d", (int)act)

int cuda_batchnorm_fwd_train(ops_ctx *ctx, ops_act act, float *y, float *mean, float *rstd, float *running_mean,
                             float *running_var, const float *x, const float *gamma, const float *beta, int n, int c,
                             int hw, float momentum, float eps) {
    BN_CHECK("batchnorm_fwd_train");
    cuda_batchnorm_train_k<<<(unsigned)c, NORM_THREADS, 0, CUDA_STREAM(ctx)>>>(
        act, y, mean, rstd, running_mean, running_var, x, gamma, beta, n, c, hw, momentum, eps);
    CUDA_LAUNCHED("cuda_batchnorm_train_k");
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
    cuda_batchnorm_bwd_k<<<(unsigned)c, NORM_THREADS, 0, CUDA_STREAM(ctx)>>>(act, dx, dgamma, dbeta, dy, x, mean, rstd,
                                                                             gamma, beta, n, c, hw);
    CUDA_LAUNCHED("cuda_batchnorm_bwd_k");
    return 0;
}
