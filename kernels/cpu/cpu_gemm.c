// cpu_gemm: the GEMM-shaped ops on the CPU through OpenBLAS: linear forward/backward and the
// batched GEMM (attention). A batched GEMM with at least as many matrices as threads runs its
// matrices in an OpenMP loop with single-threaded OpenBLAS; otherwise OpenBLAS gets the threads
// (outside any OpenMP region). Small linear layers run single-threaded (the fork costs more).
#include "kernels/cpu/cpu_internal.h"

#include <cblas.h>

#include "common/err.h"

// OpenBLAS threads for a linear layer: one below about a million multiply-adds.
static void cpu_linear_blas(ops_ctx *ctx, int n, int in, int out) {
    if ((double)n * in * out < 1e6) cpu_blas_set(ctx, 1);
    else cpu_blas_threads(ctx);
}

int cpu_linear_fwd(ops_ctx *ctx, float *y, const float *x, const float *w, const float *b, int n, int in, int out) {
    ERR_IF(n <= 0 || in <= 0 || out <= 0, ERR_USAGE, "linear_fwd: invalid shape n=%d in=%d out=%d (all must be > 0)", n, in, out);
    float beta = 0.0f;
    if (b) {
        for (int i = 0; i < n; i++) memcpy(y + (size_t)i * out, b, (size_t)out * sizeof(float));
        beta = 1.0f;
    }
    cpu_linear_blas(ctx, n, in, out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, beta, y, out);
    return 0;
}

int cpu_linear_bwd(ops_ctx *ctx, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int n,
                   int in, int out) {
    ERR_IF(n <= 0 || in <= 0 || out <= 0, ERR_USAGE, "linear_bwd: invalid shape n=%d in=%d out=%d (all must be > 0)", n, in, out);
    cpu_linear_blas(ctx, n, in, out);
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
    size_t sa = (size_t)m * k, sb = (size_t)k * n, sc = (size_t)m * n;
    int nt = cpu_threads(ctx), outer = nt > 1 && batch >= nt;
    cpu_blas_set(ctx, outer ? 1 : nt);
#pragma omp parallel for schedule(static) num_threads(nt) if (outer)
    for (int i = 0; i < batch; i++) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                    a + i * sa, ta ? m : k, b + i * sb, tb ? k : n, beta, c + i * sc, n);
    }
    return 0;
}
