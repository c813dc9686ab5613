// cuda_shape: the deterministic row and channel reductions shared by the backend, and the shape
// ops: channel bias, channel sums, concat, nearest upsampling, global average pooling.
#include "kernels/cuda/cuda_internal.h"

// --- deterministic reductions (one block per output, fixed order, double accumulation) --------

__global__ void cuda_rows_sum_k(float *out, const float *src, size_t len, size_t stride_r, size_t stride_j,
                                float alpha, int accumulate) {
    __shared__ double sh[CUDA_THREADS];
    size_t r = blockIdx.x;
    const float *row = src + r * stride_r;
    double acc = 0.0;
    for (size_t j = threadIdx.x; j < len; j += blockDim.x) acc += (double)row[j * stride_j];
    double s = cuda_block_sum(acc, sh);
    if (threadIdx.x == 0) out[r] = (accumulate ? out[r] : 0.f) + (float)((double)alpha * s);
}

int cuda_rows_sum(ops_ctx *ctx, float *out, const float *src, int rows, size_t len, size_t stride_r,
                  size_t stride_j, float alpha, int accumulate) {
    if (rows <= 0) return 0;
    cuda_rows_sum_k<<<(unsigned)rows, CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(out, src, len, stride_r, stride_j,
                                                                            alpha, accumulate);
    CUDA_LAUNCHED("cuda_rows_sum_k");
    return 0;
}

__global__ void cuda_channel_reduce_k(float *out, const float *dy, int n, int c, int hw, int accumulate) {
    __shared__ double sh[CUDA_THREADS];
    int ch = blockIdx.x;
    size_t len = (size_t)n * hw;
    double acc = 0.0;
    for (size_t j = threadIdx.x; j < len; j += blockDim.x) {
        size_t b = j / (size_t)hw, p = j % (size_t)hw;
        acc += (double)dy[(b * c + ch) * (size_t)hw + p];
    }
    double s = cuda_block_sum(acc, sh);
    if (threadIdx.x == 0) out[ch] = (accumulate ? out[ch] : 0.f) + (float)s;
}

int cuda_channel_reduce(ops_ctx *ctx, float *out, const float *dy, int n, int c, int hw, int accumulate) {
    if (c <= 0) return 0;
    cuda_channel_reduce_k<<<(unsigned)c, CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(out, dy, n, c, hw, accumulate);
    CUDA_LAUNCHED("cuda_channel_reduce_k");
    return 0;
}

#define NCHW_CHECK(op, n, c, hw) \
    CUDA_SHAPE_IF((n) <= 0 || (c) <= 0 || (hw) <= 0, op ": bad shape n %d, c %d, hw %d", (n), (c), (hw))

// --- channel bias -----------------------------------------------------------------------------

__global__ void cuda_add_channel_bias_k(float *y, const float *bias, size_t total, int hw) {
    CUDA_GRID_STRIDE(i, total) y[i] += bias[i / (size_t)hw];
}

int cuda_add_channel_bias(ops_ctx *ctx, float *y, const float *bias, int n, int c, int hw) {
    NCHW_CHECK("add_channel_bias", n, c, hw);
    size_t total = (size_t)n * c * hw;
    cuda_add_channel_bias_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, bias, total, hw);
    CUDA_LAUNCHED("cuda_add_channel_bias_k");
    return 0;
}

int cuda_channel_sum(ops_ctx *ctx, float *dbias, const float *dy, int n, int c, int hw) {
    NCHW_CHECK("channel_sum", n, c, hw);
    return cuda_rows_sum(ctx, dbias, dy, n * c, (size_t)hw, (size_t)hw, 1, 1.f, 1);
}

// --- concat -----------------------------------------------------------------------------------

__global__ void cuda_concat_fwd_k(float *y, const float *a, const float *b, size_t total, int ca, int cb,
                                  int hw) {
    size_t per = (size_t)(ca + cb) * hw;
    CUDA_GRID_STRIDE(i, total) {
        size_t n = i / per, r = i % per;
        size_t ch = r / (size_t)hw, p = r % (size_t)hw;
        y[i] = ch < (size_t)ca ? a[(n * ca + ch) * hw + p] : b[(n * cb + (ch - ca)) * hw + p];
    }
}

__global__ void cuda_concat_bwd_k(float *da, float *db, const float *dy, size_t total, int ca, int cb, int hw) {
    size_t per = (size_t)(ca + cb) * hw;
    CUDA_GRID_STRIDE(i, total) {
        size_t n = i / per, r = i % per;
        size_t ch = r / (size_t)hw, p = r % (size_t)hw;
        if (ch < (size_t)ca) {
            if (da) da[(n * ca + ch) * hw + p] += dy[i];
        } else if (db) {
            db[(n * cb + (ch - ca)) * hw + p] += dy[i];
        }
    }
}

int cuda_concat_fwd(ops_ctx *ctx, float *y, const float *a, const float *b, int n, int ca, int cb, int hw) {
    CUDA_SHAPE_IF(n <= 0 || ca <= 0 || cb <= 0 || hw <= 0, "concat_fwd: bad shape n %d, ca %d, cb %d, hw %d", n,
                  ca, cb, hw);
    size_t total = (size_t)n * (ca + cb) * hw;
    cuda_concat_fwd_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, a, b, total, ca, cb, hw);
    CUDA_LAUNCHED("cuda_concat_fwd_k");
    return 0;
}

int cuda_concat_bwd(ops_ctx *ctx, float *da, float *db, const float *dy, int n, int ca, int cb, int hw) {
    CUDA_SHAPE_IF(n <= 0 || ca <= 0 || cb <= 0 || hw <= 0, "concat_bwd: bad shape n %d, ca %d, cb %d, hw %d", n,
                  ca, cb, hw);
    size_t total = (size_t)n * (ca + cb) * hw;
    cuda_concat_bwd_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(da, db, dy, total, ca, cb, hw);
    CUDA_LAUNCHED("cuda_concat_bwd_k");
    return 0;
}

// --- nearest 2x upsampling ---------------------------------------------------------------------

__global__ void cuda_upsample2x_fwd_k(float *y, const float *x, size_t total, int h, int w) {
    int w2 = 2 * w, h2 = 2 * h;
    CUDA_GRID_STRIDE(i, total) {
        size_t ox = i % (size_t)w2, t = i / (size_t)w2;
        size_t oy = t % (size_t)h2, nc = t / (size_t)h2;
        y[i] = x[(nc * h + oy / 2) * w + ox / 2];
    }
}

__global__ void cuda_upsample2x_bwd_k(float *dx, const float *dy, size_t total, int h, int w) {
    int w2 = 2 * w;
    CUDA_GRID_STRIDE(i, total) {
        size_t ix = i % (size_t)w, t = i / (size_t)w;
        size_t iy = t % (size_t)h, nc = t / (size_t)h;
        const float *d = dy + (nc * 2 * h + 2 * iy) * (size_t)w2 + 2 * ix;
        dx[i] += (d[0] + d[1]) + (d[w2] + d[w2 + 1]);
    }
}

int cuda_upsample2x_fwd(ops_ctx *ctx, float *y, const float *x, int n, int c, int h, int w) {
    CUDA_SHAPE_IF(n <= 0 || c <= 0 || h <= 0 || w <= 0, "upsample2x_fwd: bad shape %d x %d x %d x %d", n, c, h, w);
    size_t total = (size_t)n * c * 4 * h * w;
    cuda_upsample2x_fwd_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, x, total, h, w);
    CUDA_LAUNCHED("cuda_upsample2x_fwd_k");
    return 0;
}

int cuda_upsample2x_bwd(ops_ctx *ctx, float *dx, const float *dy, int n, int c, int h, int w) {
    CUDA_SHAPE_IF(n <= 0 || c <= 0 || h <= 0 || w <= 0, "upsample2x_bwd: bad shape %d x %d x %d x %d", n, c, h, w);
    size_t total = (size_t)n * c * h * w;
    cuda_upsample2x_bwd_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(dx, dy, total, h, w);
    CUDA_LAUNCHED("cuda_upsample2x_bwd_k");
    return 0;
}

// --- global average pooling --------------------------------------------------------------------

__global__ void cuda_avgpool_bwd_k(float *dx, const float *dy, size_t total, int hw) {
    float inv = 1.f / (float)hw;
    CUDA_GRID_STRIDE(i, total) dx[i] += dy[i / (size_t)hw] * inv;
}

int cuda_avgpool_fwd(ops_ctx *ctx, float *y, const float *x, int n, int c, int hw) {
    NCHW_CHECK("avgpool_fwd", n, c, hw);
    return cuda_rows_sum(ctx, y, x, n * c, (size_t)hw, (size_t)hw, 1, 1.f / (float)hw, 0);
}

int cuda_avgpool_bwd(ops_ctx *ctx, float *dx, const float *dy, int n, int c, int hw) {
    NCHW_CHECK("avgpool_bwd", n, c, hw);
    size_t total = (size_t)n * c * hw;
    cuda_avgpool_bwd_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(dx, dy, total, hw);
    CUDA_LAUNCHED("cuda_avgpool_bwd_k");
    return 0;
}
