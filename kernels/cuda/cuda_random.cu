// cuda_random: Philox4x32-10 normals and the inverted-dropout mask (kernels/philox.h), element i
// of an op being element offset + i of the stream: the same numbers as the CPU backend. One
// thread per counter block computes its four lanes (normals from Box-Muller in double).
#include "kernels/cuda/cuda_internal.h"

__global__ void cuda_randn_k(float *y, size_t n, philox_key key, uint64_t offset, uint64_t b0, uint64_t nblk) {
    CUDA_GRID_STRIDE(q, nblk) {
        uint64_t blk = b0 + q;
        float z[4];
        philox_normal4(key, blk, z);
        for (int lane = 0; lane < 4; lane++) {
            uint64_t j = blk * 4 + (uint64_t)lane;
            if (j >= offset && j < offset + n) y[j - offset] = z[lane];
        }
    }
}

int cuda_randn(ops_ctx *ctx, float *y, size_t n, philox_key key, uint64_t offset) {
    if (!n) return 0;
    uint64_t b0 = offset >> 2, b1 = (offset + n - 1) >> 2, nblk = b1 - b0 + 1;
    cuda_randn_k<<<cuda_blocks(nblk), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, n, key, offset, b0, nblk);
    CUDA_LAUNCHED("cuda_randn_k");
    return 0;
}

__device__ __forceinline__ int cuda_dropout_keep(philox_key key, uint64_t j, float p) {
    return philox_uniform_at(key, j) >= p;
}

__global__ void cuda_dropout_fwd_k(float *y, const float *x, size_t n, float p, float q, philox_key key, uint64_t offset) {
    CUDA_GRID_STRIDE(i, n) y[i] = (q > 0.0f && cuda_dropout_keep(key, offset + i, p)) ? x[i] / q : 0.0f;
}

__global__ void cuda_dropout_bwd_k(float *dx, const float *dy, size_t n, float p, float q, philox_key key,
                                   uint64_t offset) {
    CUDA_GRID_STRIDE(i, n) {
        if (q > 0.0f && cuda_dropout_keep(key, offset + i, p)) dx[i] += dy[i] / q;
    }
}

int cuda_dropout_fwd(ops_ctx *ctx, float *y, const float *x, size_t n, float p, philox_key key, uint64_t offset) {
    CUDA_SHAPE_IF(!(p >= 0.0f && p <= 1.0f), "dropout_fwd: probability %g is outside [0, 1]", (double)p);
    if (!n) return 0;
    cuda_dropout_fwd_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, x, n, p, 1.0f - p, key, offset);
    CUDA_LAUNCHED("cuda_dropout_fwd_k");
    return 0;
}

int cuda_dropout_bwd(ops_ctx *ctx, float *dx, const float *dy, size_t n, float p, philox_key key, uint64_t offset) {
    CUDA_SHAPE_IF(!(p >= 0.0f && p <= 1.0f), "dropout_bwd: probability %g is outside [0, 1]", (double)p);
    if (!n) return 0;
    cuda_dropout_bwd_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(dx, dy, n, p, 1.0f - p, key, offset);
    CUDA_LAUNCHED("cuda_dropout_bwd_k");
    return 0;
}
