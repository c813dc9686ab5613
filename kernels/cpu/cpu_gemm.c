// cpu_gemm: the GEMM-shaped ops on the CPU through OpenBLAS: linear forward/backward and the
// batched GEMM (attention). OpenBLAS threads are set to the context's count before each call;
// none of these calls runs inside an OpenMP region.
#include "kernels/cpu/cpu_internal.h"

#include <cblas.h>

#include "common/err.h"

int cpu_linear_fwd(ops_ctx *ctx, float *y, const float *x, const float *w, const float *b, int n, int in, int out) {
    ERR_IF(n <= 0 || in <= 0 || out <= 0, ERR_USAGE, "linear_fwd: invalid shape n=%d in=%d out=%d (all must be > 0)", n, in, out);
    float beta = 0.0f;
    if (b) {
        for (int i = 0; i < n; i++) memcpy(y + (size_t)i * out, b, (size_t)out * sizeof(float));
        beta = 1.0f;
    }
    cpu_blas_threads(ctx);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, beta, y, out);
    return 0;
}

int cpu_linear_bwd(ops_ctx *ctx, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int n,
                   int in, int out) {
    ERR_IF(n <= 0 || in <= 0 || out <= 0, ERR_USAGE, "linear_bwd: invalid shape n=%d in=%d out=%d (all must be > 0)", n, in, out);
    cpu_blas_threads(ctx);
    // dx (N, IN) += dy (N, OUT) w (OUT, IN)
    if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in);
    // dw (OUT, IN) += dy^T (OUT, N) x (N, IN)
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
    // db (OUT) += sum over rows of dy, rows in order
    if (db) {
        for (int i = 0; i < n; i++) {
            const float *r = dy + (size_t)i * out;
#pragma omp simd
            for (int o = 0; o < out; o++) db[o] += r[o];
        }
    }
    return 0;
}

int cpu_bmm(ops_ctx *ctx, float *c, const float *a, const float *b, int batch, int m, int n, int k, int ta, int tb,
            float alpha, float beta) {
    ERR_IF(batch <= 0 || m <= 0 || n <= 0 || k <= 0, ERR_USAGE,
           "bmm: invalid shape batch=%d m=%d n=%d k=%d (all must be > 0)", batch, m, n, k);
    cpu_blas_threads(ctx);
    size_t sa = (size_t)m * k, sb = (size_t)k * n, sc = (size_t)m * n;
    for (int i = 0; i < batch; i++) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                    a + i * sa, ta ? m : k, b + i * sb, tb ? k : n, beta, c + i * sc, n);
    }
    return 0;
}
