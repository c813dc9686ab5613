// scores_fit: the baselines fitted on the ID train features by BLAS/LAPACK: MDS (class means,
// shared covariance, Cholesky inverse) and KNN (exact k-th neighbour by dgemm blocks); see
// scores.h.
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/ood/scores.h"
#include "common/ood/scores_select.h"

// LAPACK (Fortran) from OpenBLAS.
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);

#define OSCORE_BLOCK 1024 // rows per BLAS block
#define OSCORE_KNN_BLOCK 256 // queries per dgemm against the whole train set

// --- MDS -------------------------------------------------------------------------------------

void oscore_mds_free(oscore_mds *m) {
    if (!m) return;
    free(m->mean);
    free(m->present);
    free(m->precision);
    memset(m, 0, sizeof *m);
}

int oscore_mds_fit(oscore_mds *m, const float *feat, const int32_t *label, int64_t n, int D, int K,
                   double eps) {
    memset(m, 0, sizeof *m);
    ERR_IF(n < 1 || D < 1 || K < 1, ERR_INPUT, "MDS: no train features");
    int rc = 0;
    int64_t *count = calloc((size_t)K, sizeof *count);
    double *blk = malloc(sizeof(double) * OSCORE_BLOCK * (size_t)D), *gmean = calloc((size_t)D, sizeof(double));
    m->K = K;
    m->D = D;
    m->mean = calloc((size_t)K * D, sizeof(double));
    m->present = calloc((size_t)K, 1);
    m->precision = calloc((size_t)D * D, sizeof(double));
    ERR_GOTO_IF(rc, !count || !blk || !gmean || !m->mean || !m->present || !m->precision, ERR_NOMEM,
                "out of memory (MDS, D = %d)", D);
    for (int64_t j = 0; j < n; j++) {
        int c = label[j];
        ERR_GOTO_IF(rc, c < 0 || c >= K, ERR_INPUT, "MDS: train label %d of row %lld outside 0..%d", c,
                    (long long)j, K - 1);
        count[c]++;
        for (int i = 0; i < D; i++) m->mean[(int64_t)c * D + i] += feat[j * D + i];
    }
    for (int c = 0; c < K; c++) {
        m->present[c] = count[c] > 0;
        for (int i = 0; i < D && count[c]; i++) m->mean[(int64_t)c * D + i] /= (double)count[c];
    }
    // overall mean of the class-centred rows (0 up to rounding; sklearn subtracts it)
    for (int64_t j = 0; j < n; j++)
        for (int i = 0; i < D; i++) gmean[i] += feat[j * D + i] - m->mean[(int64_t)label[j] * D + i];
    for (int i = 0; i < D; i++) gmean[i] /= (double)n;
    for (int64_t r0 = 0; r0 < n; r0 += OSCORE_BLOCK) {
        int64_t rows = n - r0 < OSCORE_BLOCK ? n - r0 : OSCORE_BLOCK;
        for (int64_t j = 0; j < rows; j++)
            for (int i = 0; i < D; i++)
                blk[j * D + i] = feat[(r0 + j) * D + i] - m->mean[(int64_t)label[r0 + j] * D + i] - gmean[i];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, (int)rows, 1.0, blk, D, r0 ? 1.0 : 0.0,
                    m->precision, D);
    }
    double *P = m->precision;
    for (int r = 0; r < D; r++)
        for (int c = r; c < D; c++) {
            P[r * D + c] /= (double)n;
            if (r == c) P[r * D + c] += eps;
            P[c * D + r] = P[r * D + c];
        }
    int info = 0;
    dpotrf_("U", &D, P, &D, &info);
    ERR_GOTO_IF(rc, info != 0, ERR_INPUT,
                "MDS: the train feature covariance (+ score.mds_eps = %g) is not positive definite "
                "(dpotrf info %d): raise score.mds_eps", eps, info);
    dpotri_("U", &D, P, &D, &info);
    ERR_GOTO_IF(rc, info != 0, ERR_INTERNAL, "MDS: dpotri failed (info %d)", info);
    // column-major upper = row-major lower: mirror it up
    for (int r = 0; r < D; r++)
        for (int c = r + 1; c < D; c++) P[r * D + c] = P[c * D + r];
fail:
    free(count);
    free(blk);
    free(gmean);
    if (rc < 0) oscore_mds_free(m);
    return rc;
}

int oscore_mds_score(const oscore_mds *m, const float *feat, int64_t n, double *out) {
    int D = m->D, rc = 0;
    double *diff = malloc(sizeof(double) * OSCORE_BLOCK * (size_t)D), *y = malloc(sizeof(double) * OSCORE_BLOCK * (size_t)D);
    ERR_GOTO_IF(rc, !diff || !y, ERR_NOMEM, "out of memory (MDS scores)");
    for (int64_t j = 0; j < n; j++) out[j] = INFINITY;
    for (int64_t r0 = 0; r0 < n; r0 += OSCORE_BLOCK) {
        int64_t rows = n - r0 < OSCORE_BLOCK ? n - r0 : OSCORE_BLOCK;
        for (int c = 0; c < m->K; c++) {
            if (!m->present[c]) continue;
            const double *mu = m->mean + (int64_t)c * D;
            for (int64_t j = 0; j < rows; j++)
                for (int i = 0; i < D; i++) diff[j * D + i] = feat[(r0 + j) * D + i] - mu[i];
            cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, (int)rows, D, 1.0, m->precision, D, diff, D,
                        0.0, y, D);
            for (int64_t j = 0; j < rows; j++) {
                double q = 0;
                for (int i = 0; i < D; i++) q += diff[j * D + i] * y[j * D + i];
                if (q < out[r0 + j]) out[r0 + j] = q;
            }
        }
    }
fail:
    free(diff);
    free(y);
    return rc;
}

// --- KNN -------------------------------------------------------------------------------------

void oscore_knn_free(oscore_knn *m) {
    if (!m) return;
    free(m->train);
    free(m->sq);
    memset(m, 0, sizeof *m);
}

// OpenOOD's normalizer: x / ||x|| + 1e-10 (the 1e-10 is added to every element).
static void oscore_knn_norm(const float *x, int D, double *v, double *sq) {
    double s = 0;
    for (int i = 0; i < D; i++) s += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(s), t = 0;
    for (int i = 0; i < D; i++) {
        v[i] = x[i] * inv + 1e-10;
        t += v[i] * v[i];
    }
    *sq = t;
}

int oscore_knn_fit(oscore_knn *m, const float *feat, int64_t n, int D) {
    memset(m, 0, sizeof *m);
    ERR_IF(n < 1 || D < 1, ERR_INPUT, "KNN: no train features");
    m->train = malloc(sizeof(double) * (size_t)n * D);
    m->sq = malloc(sizeof(double) * (size_t)n);
    if (!m->train || !m->sq) {
        oscore_knn_free(m);
        return err_set(ERR_NOMEM, "out of memory (KNN, %lld x %d train features)", (long long)n, D);
    }
    m->n = n;
    m->D = D;
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; j++) oscore_knn_norm(feat + j * D, D, m->train + j * D, m->sq + j);
    return 0;
}


int oscore_knn_score(const oscore_knn *m, const float *feat, int64_t n, int k, double *out) {
    ERR_IF(k < 1 || k > m->n, ERR_INPUT, "KNN: k = %d outside 1..%lld (the number of train features)", k,
           (long long)m->n);
    int D = m->D, rc = 0;
    int64_t N = m->n;
    double *q = malloc(sizeof(double) * OSCORE_KNN_BLOCK * (size_t)D), *qsq = malloc(sizeof(double) * OSCORE_KNN_BLOCK);
    double *g = malloc(sizeof(double) * OSCORE_KNN_BLOCK * (size_t)N);
    ERR_GOTO_IF(rc, !q || !qsq || !g, ERR_NOMEM, "out of memory (KNN scores)");
    for (int64_t r0 = 0; r0 < n; r0 += OSCORE_KNN_BLOCK) {
        int64_t rows = n - r0 < OSCORE_KNN_BLOCK ? n - r0 : OSCORE_KNN_BLOCK;
        for (int64_t j = 0; j < rows; j++) oscore_knn_norm(feat + (r0 + j) * D, D, q + j * D, qsq + j);
        // g = q train^T: (rows, N)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)N, D, 1.0, q, D, m->train, D, 0.0,
                    g, (int)N);
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t j = 0; j < rows; j++) {
            double *row = g + j * N;
            for (int64_t t = 0; t < N; t++) {
                double d2 = qsq[j] + m->sq[t] - 2 * row[t];
                row[t] = d2 > 0 ? d2 : 0; // faiss clamps negative rounding to 0
            }
            out[r0 + j] = oscore_select_d(row, N, k - 1);
        }
    }
fail:
    free(q);
    free(qsq);
    free(g);
    return rc;
}
