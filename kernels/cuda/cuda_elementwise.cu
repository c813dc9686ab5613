// cuda_elementwise: fill, add, scale, axpy, axpby (per row too) and the activations (forward, backward) as
// grid-stride kernels on the context's stream.
#include <string.h>

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
// Per-row coefficients of up to CUDA_ROWS_CHUNK rows, passed by value (2 KiB of kernel
// parameters): no upload, so the launch never waits for the host.
#define CUDA_ROWS_CHUNK 256
typedef struct {
    float a[CUDA_ROWS_CHUNK], b[CUDA_ROWS_CHUNK];
} cuda_row_coefs;
__global__ void cuda_axpby_rows_k(float *y, cuda_row_coefs c, const float *x, const float *z, size_t per, size_t n) {
    CUDA_GRID_STRIDE(i, n) {
        size_t r = i / per;
        y[i] = c.a[r] * x[i] + c.b[r] * z[i];
    }
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

int cuda_axpby_rows(ops_ctx *ctx, float *y, const float *a, const float *x, const float *b, const float *z, int rows,
                    size_t per) {
    CUDA_SHAPE_IF(rows < 0, "axpby_rows: negative row count %d", rows);
    if (!per) return 0;
    for (int r0 = 0; r0 < rows; r0 += CUDA_ROWS_CHUNK) {
        int nr = rows - r0 < CUDA_ROWS_CHUNK ? rows - r0 : CUDA_ROWS_CHUNK;
        cuda_row_coefs c;
        memset(&c, 0, sizeof c);
        memcpy(c.a, a + r0, sizeof(float) * nr);
        memcpy(c.b, b + r0, sizeof(float) * nr);
        size_t o = (size_t)r0 * per, n = (size_t)nr * per;
        cuda_axpby_rows_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y + o, c, x + o, z + o, per, n);
        CUDA_LAUNCHED("cuda_axpby_rows_k");
    }
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
