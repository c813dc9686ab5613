// cpu_gemm: the GEMM-shaped ops on the CPU (cpu_sgemm): linear forward/backward and the batched
// GEMM (attention). A batched GEMM with at least as many matrices as threads runs its matrices
// in an OpenMP loop, each single-threaded; otherwise each GEMM splits its columns over the
// threads. Small linear layers run single-threaded (the fork costs more). Results do not depend
// on the thread count. Only a batched GEMM with both operands transposed (no caller has one)
// goes to OpenBLAS.
#include "kernels/cpu/cpu_internal.h"

#include <cblas.h>

#include "common/err.h"
#include "kernels/cpu/cpu_sgemm.h"

// Threads for a linear layer: one below about a million multiply-adds.
static int cpu_linear_threads(ops_ctx *ctx, int n, int in, int out) {
    return (double)n * in * out < 1e6 ? 1 : cpu_threads(ctx);
}

int cpu_linear_fwd(ops_ctx *ctx, float *y, const float *x, const float *w, const float *b, int n, int in, int out) {
    ERR_IF(n <= 0 || in <= 0 || out <= 0, ERR_USAGE, "linear_fwd: invalid shape n=%d in=%d out=%d (all must be > 0)", n, in, out);
    float beta = 0.0f;
    if (b) {
        for (int i = 0; i < n; i++) memcpy(y + (size_t)i * out, b, (size_t)out * sizeof(float));
        beta = 1.0f;
    }
    cpu_sgemm_mt(cpu_linear_threads(ctx, n, in, out), 0, 1, n, out, in, 1.0f, x, in, w, in, beta, y, out);
    return 0;
}

int cpu_linear_bwd(ops_ctx *ctx, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int n,
                   int in, int out) {
    ERR_IF(n <= 0 || in <= 0 || out <= 0, ERR_USAGE, "linear_bwd: invalid shape n=%d in=%d out=%d (all must be > 0)", n, in, out);
    int nt = cpu_linear_threads(ctx, n, in, out);
    // dx (N, IN) += dy (N, OUT) w (OUT, IN)
    if (dx) cpu_sgemm_mt(nt, 0, 0, n, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in);
    // dw (OUT, IN) += dy^T (OUT, N) x (N, IN)
    if (dw) cpu_sgemm_mt(nt, 1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
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
    if (ta && tb) { // OpenBLAS (cpu_sgemm has no TT kernel)
        cpu_blas_set(ctx, outer ? 1 : nt);
#pragma omp parallel for schedule(static) num_threads(nt) if (outer)
        for (int i = 0; i < batch; i++)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, m, n, k, alpha, a + i * sa, m, b + i * sb, k, beta,
                        c + i * sc, n);
        return 0;
    }
#pragma omp parallel for schedule(static) num_threads(nt) if (outer)
    for (int i = 0; i < batch; i++)
        cpu_sgemm_mt(outer ? 1 : nt, ta, tb, m, n, k, alpha, a + i * sa, ta ? m : k, b + i * sb, tb ? k : n, beta,
                     c + i * sc, n);
    return 0;
}
