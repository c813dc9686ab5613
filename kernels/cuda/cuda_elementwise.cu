// cuda_elementwise: fill, add, scale, axpy, axpby and the activations (forward, backward) as
// grid-stride kernels on the context's stream.
#include "kernels/cuda/cuda_internal.h"

// --- kernels ----------------------------------------------------------------------------------

__global__ void cuda_fill_k(float *y, float v, size_t n) {
    CUDA_GRID_STRIDE(i, n) y[i] = v;
}
__global__ void cuda_add_k(float *y, const float *a, const float *b, size_t n) {
    CUDA_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}
__global__ void cuda_scale_k(float *y, float alpha, size_t n) {
    CUDA_GRID_STRIDE(i, n) y[i] = alpha * y[i];
}
__global__ void cuda_axpy_k(float *y, float alpha, const float *x, size_t n) {
    CUDA_GRID_STRIDE(i, n) y[i] += alpha * x[i];
}
__global__ void cuda_axpby_k(float *y, float a, const float *x, float b, const float *z, size_t n) {
    CUDA_GRID_STRIDE(i, n) y[i] = a * x[i] + b * z[i];
}
__global__ void cuda_act_fwd_k(ops_act act, float *y, const float *x, size_t n) {
    CUDA_GRID_STRIDE(i, n) y[i] = cuda_act(act, x[i]);
}
__global__ void cuda_act_bwd_k(ops_act act, float *dx, const float *dy, const float *x, size_t n) {
    CUDA_GRID_STRIDE(i, n) dx[i] += dy[i] * cuda_act_grad(act, x[i]);
}

// --- ops --------------------------------------------------------------------------------------

int cuda_fill(ops_ctx *ctx, float *y, float v, size_t n) {
    if (!n) return 0;
    cuda_fill_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, v, n);
    CUDA_LAUNCHED("cuda_fill_k");
    return 0;
}

int cuda_add(ops_ctx *ctx, float *y, const float *a, const float *b, size_t n) {
    if (!n) return 0;
    cuda_add_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, a, b, n);
    CUDA_LAUNCHED("cuda_add_k");
    return 0;
}

int cuda_scale(ops_ctx *ctx, float *y, float alpha, size_t n) {
    if (!n) return 0;
    cuda_scale_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, alpha, n);
    CUDA_LAUNCHED("cuda_scale_k");
    return 0;
}

int cuda_axpy(ops_ctx *ctx, float *y, float alpha, const float *x, size_t n) {
    if (!n) return 0;
    cuda_axpy_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, alpha, x, n);
    CUDA_LAUNCHED("cuda_axpy_k");
    return 0;
}

int cuda_axpby(ops_ctx *ctx, float *y, float a, const float *x, float b, const float *z, size_t n) {
    if (!n) return 0;
    cuda_axpby_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, a, x, b, z, n);
    CUDA_LAUNCHED("cuda_axpby_k");
    return 0;
}

int cuda_act_fwd(ops_ctx *ctx, ops_act act, float *y, const float *x, size_t n) {
    CUDA_SHAPE_IF(act < 0 || act >= OPS_ACT_COUNT, "act_fwd: unknown activation %d", (int)act);
    if (!n) return 0;
    cuda_act_fwd_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(act, y, x, n);
    CUDA_LAUNCHED("cuda_act_fwd_k");
    return 0;
}

int cuda_act_bwd(ops_ctx *ctx, ops_act act, float *dx, const float *dy, const float *x, size_t n) {
    CUDA_SHAPE_IF(act < 0 || act >= OPS_ACT_COUNT, "act_bwd: unknown activation %d", (int)act);
    if (!n) return 0;
    cuda_act_bwd_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(act, dx, dy, x, n);
    CUDA_LAUNCHED("cuda_act_bwd_k");
    return 0;
}
