// cpu_shape: the shape ops on the CPU (per-channel bias and its adjoint, channel concatenation,
// nearest x2 upsampling, global average pooling), forward and backward. OpenMP over (image,
// channel) planes, which every op here reads and writes independently.
#include "kernels/cpu/cpu_internal.h"

#include "common/err.h"

#define CPU_PLANES(ctx, total, work) ((total) > 1 ? cpu_par_threads((ctx), (size_t)(total) * (size_t)(work)) : 1)

static int cpu_nchw_check(const char *op, int n, int c, int hw) {
    if (n <= 0 || c <= 0 || hw <= 0) return err_set(ERR_USAGE, "%s: invalid shape n=%d c=%d hw=%d (all must be > 0)", op, n, c, hw);
    return 0;
}

int cpu_add_channel_bias(ops_ctx *ctx, float *y, const float *bias, int n, int c, int hw) {
    ERR_TRY(cpu_nchw_check("add_channel_bias", n, c, hw));
    int total = n * c, nt = CPU_PLANES(ctx, total, hw);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < total; t++) {
        float *p = y + (size_t)t * hw, b = bias[t];
#pragma omp simd
        for (int i = 0; i < hw; i++) p[i] += b;
    }
    return 0;
}

int cpu_channel_sum(ops_ctx *ctx, float *dbias, const float *dy, int n, int c, int hw) {
    ERR_TRY(cpu_nchw_check("channel_sum", n, c, hw));
    int total = n * c, nt = CPU_PLANES(ctx, total, hw);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < total; t++) {
        dbias[t] += (float)cpu_sum_f(dy + (size_t)t * hw, (size_t)hw);
    }
    return 0;
}

int cpu_concat_fwd(ops_ctx *ctx, float *y, const float *a, const float *b, int n, int ca, int cb, int hw) {
    ERR_IF(n <= 0 || ca <= 0 || cb <= 0 || hw <= 0, ERR_USAGE,
           "concat_fwd: invalid shape n=%d ca=%d cb=%d hw=%d (all must be > 0)", n, ca, cb, hw);
    size_t sa = (size_t)ca * hw, sb = (size_t)cb * hw;
    int nt = CPU_PLANES(ctx, n, sa + sb);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int img = 0; img < n; img++) {
        memcpy(y + img * (sa + sb), a + img * sa, sa * sizeof(float));
        memcpy(y + img * (sa + sb) + sa, b + img * sb, sb * sizeof(float));
    }
    return 0;
}

int cpu_concat_bwd(ops_ctx *ctx, float *da, float *db, const float *dy, int n, int ca, int cb, int hw) {
    ERR_IF(n <= 0 || ca <= 0 || cb <= 0 || hw <= 0, ERR_USAGE,
           "concat_bwd: invalid shape n=%d ca=%d cb=%d hw=%d (all must be > 0)", n, ca, cb, hw);
    size_t sa = (size_t)ca * hw, sb = (size_t)cb * hw;
    int nt = CPU_PLANES(ctx, n, sa + sb);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int img = 0; img < n; img++) {
        const float *src = dy + img * (sa + sb);
        if (da) {
            float *d = da + img * sa;
#pragma omp simd
            for (size_t i = 0; i < sa; i++) d[i] += src[i];
        }
        if (db) {
            float *d = db + img * sb;
#pragma omp simd
            for (size_t i = 0; i < sb; i++) d[i] += src[sa + i];
        }
    }
    return 0;
}

int cpu_upsample2x_fwd(ops_ctx *ctx, float *y, const float *x, int n, int c, int h, int w) {
    ERR_IF(n <= 0 || c <= 0 || h <= 0 || w <= 0, ERR_USAGE,
           "upsample2x_fwd: invalid shape n=%d c=%d h=%d w=%d (all must be > 0)", n, c, h, w);
    int total = n * c, nt = CPU_PLANES(ctx, total, 4 * h * w);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < total; t++) {
        const float *xp = x + (size_t)t * h * w;
        float *yp = y + (size_t)t * 4 * h * w;
        for (int i = 0; i < h; i++) {
            float *r0 = yp + (size_t)(2 * i) * 2 * w, *r1 = r0 + 2 * w;
            const float *src = xp + (size_t)i * w;
            for (int j = 0; j < w; j++) r0[2 * j] = r0[2 * j + 1] = src[j];
            memcpy(r1, r0, (size_t)2 * w * sizeof(float));
        }
    }
    return 0;
}

int cpu_upsample2x_bwd(ops_ctx *ctx, float *dx, const float *dy, int n, int c, int h, int w) {
    ERR_IF(n <= 0 || c <= 0 || h <= 0 || w <= 0, ERR_USAGE,
           "upsample2x_bwd: invalid shape n=%d c=%d h=%d w=%d (all must be > 0)", n, c, h, w);
    int total = n * c, nt = CPU_PLANES(ctx, total, 4 * h * w);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < total; t++) {
        float *xp = dx + (size_t)t * h * w;
        const float *yp = dy + (size_t)t * 4 * h * w;
        for (int i = 0; i < h; i++) {
            const float *r0 = yp + (size_t)(2 * i) * 2 * w, *r1 = r0 + 2 * w;
            float *d = xp + (size_t)i * w;
            for (int j = 0; j < w; j++) d[j] += (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]);
        }
    }
    return 0;
}

int cpu_avgpool_fwd(ops_ctx *ctx, float *y, const float *x, int n, int c, int hw) {
    ERR_TRY(cpu_nchw_check("avgpool_fwd", n, c, hw));
    int total = n * c, nt = CPU_PLANES(ctx, total, hw);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < total; t++) {
        y[t] = (float)(cpu_sum_f(x + (size_t)t * hw, (size_t)hw) / hw);
    }
    return 0;
}

int cpu_avgpool_bwd(ops_ctx *ctx, float *dx, const float *dy, int n, int c, int hw) {
    ERR_TRY(cpu_nchw_check("avgpool_bwd", n, c, hw));
    int total = n * c, nt = CPU_PLANES(ctx, total, hw);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < total; t++) {
        float *p = dx + (size_t)t * hw, v = dy[t] / (float)hw;
#pragma omp simd
        for (int i = 0; i < hw; i++) p[i] += v;
    }
    return 0;
}
