// cuda_loss: the training losses (summed-per-sample MSE, softmax cross-entropy) and the
// deterministic two-stage sum they share with sumsq: a fixed grid of blocks writes double
// partials in the workspace, one block adds them in order (no float atomics; the result depends
// only on n).
#include <math.h>

#include "kernels/cuda/cuda_internal.h"

#define LOSS_BLOCKS 512

// --- deterministic sums -----------------------------------------------------------------------

__global__ void cuda_partials_final_k(float *out, const double *part, int count, double scale) {
    __shared__ double sh[CUDA_THREADS];
    double acc = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) acc += part[i];
    double s = cuda_block_sum(acc, sh);
    if (threadIdx.x == 0) out[0] = (float)(s * scale);
}

// out[0] = scale * sum of the `count` partials.
static int cuda_partials_final(ops_ctx *ctx, float *out, const double *part, int count, double scale) {
    cuda_partials_final_k<<<1, CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(out, part, count, scale);
    CUDA_LAUNCHED("cuda_partials_final_k");
    return 0;
}

static int cuda_grid_for(size_t n) {
    size_t b = (n + CUDA_THREADS - 1) / CUDA_THREADS;
    return b < 1 ? 1 : (b > LOSS_BLOCKS ? LOSS_BLOCKS : (int)b);
}

__global__ void cuda_sumsq_k(double *part, const float *x, size_t n) {
    __shared__ double sh[CUDA_THREADS];
    double acc = 0.0;
    CUDA_GRID_STRIDE(i, n) acc += (double)x[i] * x[i];
    double s = cuda_block_sum(acc, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

int cuda_sumsq(ops_ctx *ctx, float *out, const float *x, size_t n) {
    int g = cuda_grid_for(n);
    void *ws;
    CUDA_TRY(cuda_workspace(ctx, (size_t)g * sizeof(double), &ws));
    double *part = (double *)ws;
    if (n) {
        cuda_sumsq_k<<<g, CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(part, x, n);
        CUDA_LAUNCHED("cuda_sumsq_k");
    } else {
        CUDA_CHECK(cudaMemsetAsync(part, 0, sizeof(double), CUDA_STREAM(ctx)));
    }
    return cuda_partials_final(ctx, out, part, g, 1.0);
}

// --- MSE --------------------------------------------------------------------------------------

__global__ void cuda_mse_k(double *part, float *dpred, const float *pred, const float *target, size_t total, float g) {
    __shared__ double sh[CUDA_THREADS];
    double acc = 0.0;
    CUDA_GRID_STRIDE(i, total) {
        float d = pred[i] - target[i];
        acc += (double)d * d;
        if (dpred) dpred[i] = g * d;
    }
    double s = cuda_block_sum(acc, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

int cuda_mse_sum_loss(ops_ctx *ctx, float *loss, float *dpred, const float *pred, const float *target, int n, int per) {
    CUDA_SHAPE_IF(n <= 0 || per <= 0, "mse_sum_loss: invalid shape n=%d per=%d (both must be > 0)", n, per);
    size_t total = (size_t)n * per;
    int g = cuda_grid_for(total);
    void *ws;
    CUDA_TRY(cuda_workspace(ctx, (size_t)g * sizeof(double), &ws));
    cuda_mse_k<<<g, CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>((double *)ws, dpred, pred, target, total, 2.0f / (float)n);
    CUDA_LAUNCHED("cuda_mse_k");
    return cuda_partials_final(ctx, loss, (const double *)ws, g, 1.0 / n);
}

// --- softmax cross-entropy: one block per row -------------------------------------------------

__global__ void cuda_xent_row_k(double *part, float *dlogits, const float *logits, const int32_t *labels, int n, int k,
                                unsigned long long *flag) {
    __shared__ double sh[CUDA_THREADS];
    int r = blockIdx.x;
    const float *z = logits + (size_t)r * k;
    int lab = labels[r];
    if (lab < 0 || lab >= k) { // uniform across the block: no barrier is skipped by some threads only
        if (threadIdx.x == 0) {
            atomicMax(flag, cuda_flag_value(n, r, lab));
            part[r] = 0.0;
        }
        return;
    }
    double mx = -INFINITY;
    for (int j = threadIdx.x; j < k; j += blockDim.x) mx = fmax(mx, (double)z[j]);
    float m = (float)cuda_block_max(mx, sh);
    double acc = 0.0;
    for (int j = threadIdx.x; j < k; j += blockDim.x) acc += exp((double)z[j] - m);
    double s = cuda_block_sum(acc, sh);
    if (threadIdx.x == 0) part[r] = log(s) + m - z[lab];
    if (dlogits) {
        float *d = dlogits + (size_t)r * k;
        for (int j = threadIdx.x; j < k; j += blockDim.x) {
            float v = (float)(exp((double)z[j] - m) / s) / (float)n;
            d[j] = j == lab ? v - 1.0f / (float)n : v;
        }
    }
}

int cuda_softmax_xent_loss(ops_ctx *ctx, float *loss, float *dlogits, const float *logits, const int32_t *labels, int n,
                           int k) {
    CUDA_SHAPE_IF(n <= 0 || k <= 0, "softmax_xent_loss: invalid shape n=%d k=%d (both must be > 0)", n, k);
    void *ws;
    unsigned long long *flag;
    CUDA_TRY(cuda_workspace(ctx, (size_t)n * sizeof(double), &ws));
    CUDA_TRY(cuda_flag_slot(ctx, "softmax_xent_loss", CUDA_FLAG_LABEL, n, k, &flag));
    cuda_xent_row_k<<<(unsigned)n, CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>((double *)ws, dlogits, logits, labels, n, k,
                                                                        flag);
    CUDA_LAUNCHED("cuda_xent_row_k");
    // a label out of range is reported at the next synchronisation point (cuda_sync_point)
    return cuda_partials_final(ctx, loss, (const double *)ws, n, 1.0 / n);
}
