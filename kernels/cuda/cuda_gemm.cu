// cuda_gemm: row-major GEMMs on cuBLAS (column-major) for bmm and linear. TF32 tensor-core math
// follows ctx->opt.tf32_matmul, not the convolutions' tf32 (set on the handle at context creation:
// CUBLAS_TF32_TENSOR_OP_MATH or CUBLAS_DEFAULT_MATH; off by default, as PyTorch's
// torch.backends.cuda.matmul.allow_tf32). Bias sums use the deterministic reduction of cuda_shape.cu.
#include "kernels/cuda/cuda_internal.h"

// Row-major C (M, N) = op(A) (M, K) op(B) (K, N) is column-major C^T (N, M) = op(B)^T op(A)^T:
// cuBLAS gets B first. Row-major B stored (K, N) is column-major B^T with ld N (no transpose);
// stored (N, K) (tb) it is column-major B with ld K, transposed. Likewise A.
int cuda_gemm(ops_ctx *ctx, float *c, const float *a, const float *b, int batch, int m, int n, int k,
              int ta, int tb, float alpha, float beta) {
    CUDA_SHAPE_IF(batch <= 0 || m <= 0 || n <= 0 || k <= 0, "bmm: bad shape batch %d, m %d, n %d, k %d",
                  batch, m, n, k);
    cublasHandle_t h = cuda_impl_of(ctx)->cublas;
    cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    int ldb = tb ? k : n;
    int lda = ta ? m : k;
    if (batch == 1) {
        CUBLAS_CHECK(cuda_blas.sgemm(h, op_b, op_a, n, m, k, &alpha, b, ldb, a, lda, &beta, c, n));
    } else {
        CUBLAS_CHECK(cuda_blas.sgemm_strided_batched(h, op_b, op_a, n, m, k, &alpha, b, ldb, (long long)k * n, a,
                                               lda, (long long)m * k, &beta, c, n, (long long)m * n, batch));
    }
    return 0;
}

int cuda_bmm(ops_ctx *ctx, float *c, const float *a, const float *b, int batch, int m, int n, int k, int ta,
             int tb, float alpha, float beta) {
    return cuda_gemm(ctx, c, a, b, batch, m, n, k, ta, tb, alpha, beta);
}

// y (N, OUT) = b broadcast over rows.
__global__ void cuda_row_broadcast_k(float *y, const float *b, size_t rows, int cols) {
    CUDA_GRID_STRIDE(i, rows * (size_t)cols) y[i] = b[i % (size_t)cols];
}

int cuda_linear_fwd(ops_ctx *ctx, float *y, const float *x, const float *w, const float *b, int n, int in,
                    int out) {
    CUDA_SHAPE_IF(n <= 0 || in <= 0 || out <= 0, "linear_fwd: bad shape n %d, in %d, out %d", n, in, out);
    float beta = 0.f;
    if (b) {
        size_t total = (size_t)n * out;
        cuda_row_broadcast_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, b, (size_t)n, out);
        CUDA_LAUNCHED("cuda_row_broadcast_k");
        beta = 1.f;
    }
    // y (N, OUT) = x (N, IN) w^T, w stored (OUT, IN)
    return cuda_gemm(ctx, y, x, w, 1, n, out, in, 0, 1, 1.f, beta);
}

int cuda_linear_bwd(ops_ctx *ctx, float *dx, float *dw, float *db, const float *dy, const float *x,
                    const float *w, int n, int in, int out) {
    CUDA_SHAPE_IF(n <= 0 || in <= 0 || out <= 0, "linear_bwd: bad shape n %d, in %d, out %d", n, in, out);
    // dx (N, IN) += dy (N, OUT) w (OUT, IN)
    if (dx) CUDA_TRY(cuda_gemm(ctx, dx, dy, w, 1, n, in, out, 0, 0, 1.f, 1.f));
    // dw (OUT, IN) += dy^T x: dy stored (N, OUT) = (K, M) -> ta
    if (dw) CUDA_TRY(cuda_gemm(ctx, dw, dy, x, 1, out, in, n, 1, 0, 1.f, 1.f));
    // db (OUT) += sum over rows of dy: out segments of length n with stride out
    if (db) CUDA_TRY(cuda_rows_sum(ctx, db, dy, out, (size_t)n, 1, (size_t)out, 1.f, 1));
    return 0;
}
