// emu_cublas: column-major SGEMM as cuBLAS defines it, for the CUDA emulator (built as
// libcublas.so.emu, which the backend dlopens like the real libcublas.so.<major>).
#include <cstdlib>

#include "cublas_v2.h"

extern "C" {
cublasStatus_t cublasCreate_v2(cublasHandle_t *h) { *h = (cublasHandle_t)malloc(1); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) { free(h); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
static int emu_math_mode = -1;
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t m) {
    emu_math_mode = (int)m;
    return CUBLAS_STATUS_SUCCESS;
}
// Emulator only: the math mode of the last cublasSetMathMode (-1 before any), for tests.
int emu_cublas_math_mode(void) { return emu_math_mode; }
const char *cublasGetStatusString(cublasStatus_t s) { return s ? "emulated cuBLAS error" : "success"; }

cublasStatus_t cublasSgemm_v2(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                              float *C, int ldc) {
    // op(A) (m, k), op(B) (k, n), C (m, n), all column-major; lda >= rows of the stored matrix
    if (m < 0 || n < 0 || k < 0 || lda < (ta == CUBLAS_OP_N ? m : k) || ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m)
        return CUBLAS_STATUS_INVALID_VALUE;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0.0;
            for (int l = 0; l < k; l++) {
                float a = ta == CUBLAS_OP_N ? A[i + (size_t)l * lda] : A[l + (size_t)i * lda];
                float b = tb == CUBLAS_OP_N ? B[l + (size_t)j * ldb] : B[j + (size_t)l * ldb];
                s += (double)a * b;
            }
            float *c = C + i + (size_t)j * ldc;
            *c = (float)(*alpha * s + (*beta != 0.f ? *beta * *c : 0.0));
        }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sa,
                                         const float *B, int ldb, long long sb, const float *beta, float *C, int ldc,
                                         long long sc, int batch) {
    for (int b = 0; b < batch; b++) {
        cublasStatus_t st = cublasSgemm_v2(h, ta, tb, m, n, k, alpha, A + b * sa, lda, B + b * sb, ldb, beta,
                                           C + b * sc, ldc);
        if (st) return st;
    }
    return CUBLAS_STATUS_SUCCESS;
}
}
