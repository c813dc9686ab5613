// cuda_softmax: row softmax (forward, backward), the embedding table lookup and its adjoint, and
// the sinusoidal timestep embedding (METHOD.md 4), with the CPU backend's formulas.
#include <math.h>

#include "kernels/cuda/cuda_internal.h"

// --- softmax: one block per row ---------------------------------------------------------------

__global__ void cuda_softmax_fwd_k(float *y, const float *x, int cols, float scale) {
    __shared__ double sh[CUDA_THREADS];
    size_t r = blockIdx.x;
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    double mx = -INFINITY;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) mx = fmax(mx, (double)(scale * xr[i]));
    float m = (float)cuda_block_max(mx, sh);
    double acc = 0.0;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        float e = expf(scale * xr[i] - m);
        yr[i] = e;
        acc += e;
    }
    float inv = (float)(1.0 / cuda_block_sum(acc, sh));
    for (int i = threadIdx.x; i < cols; i += blockDim.x) yr[i] *= inv;
}

__global__ void cuda_softmax_bwd_k(float *dx, const float *dy, const float *y, int cols, float scale) {
    __shared__ double sh[CUDA_THREADS];
    size_t r = blockIdx.x;
    const float *dyr = dy + r * cols, *yr = y + r * cols;
    float *dxr = dx + r * cols;
    double acc = 0.0;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) acc += (double)dyr[i] * yr[i];
    float dot = (float)cuda_block_sum(acc, sh);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) dxr[i] += scale * yr[i] * (dyr[i] - dot);
}

int cuda_softmax_fwd(ops_ctx *ctx, float *y, const float *x, int rows, int cols, float scale) {
    CUDA_SHAPE_IF(rows <= 0 || cols <= 0, "softmax_fwd: bad shape rows %d, cols %d", rows, cols);
    cuda_softmax_fwd_k<<<(unsigned)rows, CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, x, cols, scale);
    CUDA_LAUNCHED("cuda_softmax_fwd_k");
    return 0;
}

int cuda_softmax_bwd(ops_ctx *ctx, float *dx, const float *dy, const float *y, int rows, int cols, float scale) {
    CUDA_SHAPE_IF(rows <= 0 || cols <= 0, "softmax_bwd: bad shape rows %d, cols %d", rows, cols);
    cuda_softmax_bwd_k<<<(unsigned)rows, CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(dx, dy, y, cols, scale);
    CUDA_LAUNCHED("cuda_softmax_bwd_k");
    return 0;
}

// --- embedding --------------------------------------------------------------------------------

// A bad id raises the launch's flag word (cuda_flag_value): the word names the first one.
__global__ void cuda_embedding_fwd_k(float *y, const float *table, const int32_t *ids, int n, int rows, int dim,
                                     unsigned long long *flag) {
    CUDA_GRID_STRIDE(j, (size_t)n * dim) {
        size_t i = j / (size_t)dim;
        int id = ids[i];
        if (id < 0 || id >= rows) {
            y[j] = 0.f;
            atomicMax(flag, cuda_flag_value(n, (int)i, id));
        } else {
            y[j] = table[(size_t)id * dim + j % (size_t)dim];
        }
    }
}

// One thread per table element, scanning the ids in order (the CPU's summation order, no atomics).
__global__ void cuda_embedding_bwd_k(float *dtable, const float *dy, const int32_t *ids, int n, int rows, int dim,
                                     unsigned long long *flag) {
    CUDA_GRID_STRIDE(j, (size_t)rows * dim) {
        int row = (int)(j / (size_t)dim);
        size_t d = j % (size_t)dim;
        float acc = dtable[j];
        for (int i = 0; i < n; i++) {
            int id = ids[i];
            if (id == row) acc += dy[(size_t)i * dim + d];
            else if (row == 0 && d == 0 && (id < 0 || id >= rows)) atomicMax(flag, cuda_flag_value(n, i, id));
        }
        dtable[j] = acc;
    }
}

int cuda_embedding_fwd(ops_ctx *ctx, float *y, const float *table, const int32_t *ids, int n, int rows, int dim) {
    CUDA_SHAPE_IF(n <= 0 || rows <= 0 || dim <= 0, "embedding_fwd: bad shape n %d, rows %d, dim %d", n, rows, dim);
    size_t total = (size_t)n * dim;
    unsigned long long *flag;
    CUDA_TRY(cuda_flag_slot(ctx, "embedding_fwd", CUDA_FLAG_ID, n, rows, &flag));
    cuda_embedding_fwd_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, table, ids, n, rows, dim, flag);
    CUDA_LAUNCHED("cuda_embedding_fwd_k");
    return 0; // a bad id is reported at the next synchronisation point (cuda_sync_point)
}

int cuda_embedding_bwd(ops_ctx *ctx, float *dtable, const float *dy, const int32_t *ids, int n, int rows, int dim) {
    CUDA_SHAPE_IF(n <= 0 || rows <= 0 || dim <= 0, "embedding_bwd: bad shape n %d, rows %d, dim %d", n, rows, dim);
    size_t total = (size_t)rows * dim;
    unsigned long long *flag;
    CUDA_TRY(cuda_flag_slot(ctx, "embedding_bwd", CUDA_FLAG_ID, n, rows, &flag));
    cuda_embedding_bwd_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(dtable, dy, ids, n, rows, dim, flag);
    CUDA_LAUNCHED("cuda_embedding_bwd_k");
    return 0; // a bad id is reported at the next synchronisation point
}

// --- timestep embedding -----------------------------------------------------------------------

// f_k = exp(k * c) with c = -ln(10000) / (half - 1) rounded to float (the CPU's order).
__global__ void cuda_timestep_k(float *y, const float *t, int n, int dim, int half, float c) {
    CUDA_GRID_STRIDE(j, (size_t)n * half) {
        size_t i = j / (size_t)half;
        int k = (int)(j % (size_t)half);
        float a = t[i] * expf((float)k * c);
        y[i * dim + k] = sinf(a);
        y[i * dim + half + k] = cosf(a);
        if ((dim & 1) && k == 0) y[i * dim + dim - 1] = 0.f;
    }
}

int cuda_timestep_embedding(ops_ctx *ctx, float *y, const float *t, int n, int dim) {
    CUDA_SHAPE_IF(n <= 0 || dim < 2, "timestep_embedding: invalid shape n=%d dim=%d (n > 0, dim >= 2)", n, dim);
    int half = dim / 2;
    float c = half > 1 ? (float)(-(log(10000.0) / (double)(half - 1))) : 0.0f;
    size_t total = (size_t)n * half;
    cuda_timestep_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, t, n, dim, half, c);
    CUDA_LAUNCHED("cuda_timestep_k");
    return 0;
}
