// scores_vim: ViM (Virtual-logit Matching) as OpenOOD's vim_postprocessor: origin -pinv(W) b
// (LAPACK dgelsd, minimum norm), eigenvectors of the uncentred covariance of the shifted train
// features (dsyev), residual norm off the top `dim` directions scaled by alpha; see scores.h.
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/ood/scores.h"

extern void dgelsd_(const int *m, const int *n, const int *nrhs, double *a, const int *lda, double *b,
                    const int *ldb, double *s, const double *rcond, int *rank, double *work, const int *lwork,
                    int *iwork, int *info);
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                   double *work, const int *lwork, int *info);

#define OSCORE_VIM_BLOCK 1024

int oscore_vim_default_dim(int D) { return D >= 2048 ? 1000 : D >= 768 ? 512 : D / 2; }

void oscore_vim_free(oscore_vim *m) {
    if (!m) return;
    free(m->W);
    free(m->b);
    free(m->u);
    free(m->ns);
    memset(m, 0, sizeof *m);
}

// u = pinv(W) (-b) as the minimum-norm least-squares solution (numpy pinv's rcond 1e-15).
static int oscore_vim_origin(oscore_vim *m) {
    int K = m->K, D = m->D, nrhs = 1, ldb = K > D ? K : D, rank = 0, info = 0, lwork = -1, rc = 0;
    double rcond = 1e-15, wq = 0;
    int iwq = 0;
    double *a = malloc(sizeof(double) * (size_t)K * D), *bb = calloc((size_t)ldb, sizeof(double));
    double *s = malloc(sizeof(double) * (size_t)(K < D ? K : D)), *work = NULL;
    int *iwork = NULL;
    ERR_GOTO_IF(rc, !a || !bb || !s, ERR_NOMEM, "out of memory (ViM)");
    for (int c = 0; c < K; c++) {
        for (int i = 0; i < D; i++) a[c + (int64_t)i * K] = m->W[(int64_t)c * D + i]; // column-major
        bb[c] = -m->b[c];
    }
    dgelsd_(&K, &D, &nrhs, a, &K, bb, &ldb, s, &rcond, &rank, &wq, &lwork, &iwq, &info);
    ERR_GOTO_IF(rc, info != 0, ERR_INTERNAL, "ViM: dgelsd workspace query failed (info %d)", info);
    lwork = (int)wq + 1;
    work = malloc(sizeof(double) * (size_t)lwork);
    iwork = malloc(sizeof(int) * (size_t)(iwq > 1 ? iwq : 1));
    ERR_GOTO_IF(rc, !work || !iwork, ERR_NOMEM, "out of memory (ViM)");
    dgelsd_(&K, &D, &nrhs, a, &K, bb, &ldb, s, &rcond, &rank, work, &lwork, iwork, &info);
    ERR_GOTO_IF(rc, info != 0, ERR_INTERNAL, "ViM: dgelsd (pinv of the fc weight) failed (info %d)", info);
    memcpy(m->u, bb, sizeof(double) * (size_t)D);
fail:
    free(a);
    free(bb);
    free(s);
    free(work);
    free(iwork);
    return rc;
}

// logits of rows x (rows, D) into z (rows, K): x W^T + b.
static void oscore_vim_logits(const oscore_vim *m, const double *x, int64_t rows, double *z) {
    for (int64_t j = 0; j < rows; j++) memcpy(z + j * m->K, m->b, sizeof(double) * (size_t)m->K);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, m->K, m->D, 1.0, x, m->D, m->W, m->D, 1.0, z,
                m->K);
}

// For a block of features: x (rows, D) = feat, r (rows) = ||(x - u) NS||, z = logits.
static void oscore_vim_block(const oscore_vim *m, const float *feat, int64_t rows, double *x, double *xs,
                             double *p, double *z, double *r) {
    int D = m->D, E = D - m->dim;
    for (int64_t j = 0; j < rows; j++)
        for (int i = 0; i < D; i++) {
            x[j * D + i] = feat[j * D + i];
            xs[j * D + i] = x[j * D + i] - m->u[i];
        }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, E, D, 1.0, xs, D, m->ns, E, 0.0, p, E);
    for (int64_t j = 0; j < rows; j++) r[j] = cblas_dnrm2(E, p + j * E, 1);
    oscore_vim_logits(m, x, rows, z);
}

static double oscore_vim_lse(const double *z, int K) {
    double mx = z[0], s = 0;
    for (int c = 1; c < K; c++)
        if (z[c] > mx) mx = z[c];
    for (int c = 0; c < K; c++) s += exp(z[c] - mx);
    return mx + log(s);
}

int oscore_vim_fit(oscore_vim *m, const float *feat, int64_t n, int D, const float *W, const float *b,
                   int K, int dim) {
    memset(m, 0, sizeof *m);
    if (dim == 0) dim = oscore_vim_default_dim(D);
    ERR_IF(n < 1, ERR_INPUT, "ViM: no train features");
    ERR_IF(dim < 1 || dim >= D, ERR_INPUT, "ViM: score.vim_dim = %d outside 1..%d (feature width %d)", dim,
           D - 1, D);
    int rc = 0, E = D - dim, info = 0, lwork = -1;
    m->K = K;
    m->D = D;
    m->dim = dim;
    m->W = malloc(sizeof(double) * (size_t)K * D);
    m->b = malloc(sizeof(double) * (size_t)K);
    m->u = malloc(sizeof(double) * (size_t)D);
    m->ns = malloc(sizeof(double) * (size_t)D * E);
    double *cov = calloc((size_t)D * D, sizeof(double)), *w = malloc(sizeof(double) * (size_t)D), *work = NULL;
    double *x = malloc(sizeof(double) * OSCORE_VIM_BLOCK * (size_t)D), *xs = malloc(sizeof(double) * OSCORE_VIM_BLOCK * (size_t)D);
    double *p = malloc(sizeof(double) * OSCORE_VIM_BLOCK * (size_t)E), *z = malloc(sizeof(double) * OSCORE_VIM_BLOCK * (size_t)K);
    double *r = malloc(sizeof(double) * OSCORE_VIM_BLOCK);
    ERR_GOTO_IF(rc, !m->W || !m->b || !m->u || !m->ns || !cov || !w || !x || !xs || !p || !z || !r, ERR_NOMEM,
                "out of memory (ViM, D = %d)", D);
    for (int64_t i = 0; i < (int64_t)K * D; i++) m->W[i] = W[i];
    for (int c = 0; c < K; c++) m->b[c] = b[c];
    ERR_GOTO(rc, oscore_vim_origin(m));
    // EmpiricalCovariance(assume_centered=True) of feat - u: (x - u)^T (x - u) / n
    for (int64_t r0 = 0; r0 < n; r0 += OSCORE_VIM_BLOCK) {
        int64_t rows = n - r0 < OSCORE_VIM_BLOCK ? n - r0 : OSCORE_VIM_BLOCK;
        for (int64_t j = 0; j < rows; j++)
            for (int i = 0; i < D; i++) xs[j * D + i] = (double)feat[(r0 + j) * D + i] - m->u[i];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, (int)rows, 1.0, xs, D, 1.0, cov, D);
    }
    for (int rr = 0; rr < D; rr++)
        for (int c = rr; c < D; c++) {
            cov[rr * D + c] /= (double)n;
            cov[c * D + rr] = cov[rr * D + c];
        }
    double wq = 0;
    dsyev_("V", "U", &D, cov, &D, w, &wq, &lwork, &info);
    ERR_GOTO_IF(rc, info != 0, ERR_INTERNAL, "ViM: dsyev workspace query failed (info %d)", info);
    lwork = (int)wq + 1;
    work = malloc(sizeof(double) * (size_t)lwork);
    ERR_GOTO_IF(rc, !work, ERR_NOMEM, "out of memory (ViM)");
    dsyev_("V", "U", &D, cov, &D, w, work, &lwork, &info);
    ERR_GOTO_IF(rc, info != 0, ERR_INTERNAL, "ViM: dsyev (train feature covariance) failed (info %d)", info);
    // eigenvalues ascend: the first E columns (column-major) are the D - dim smallest
    for (int i = 0; i < D; i++)
        for (int c = 0; c < E; c++) m->ns[(int64_t)i * E + c] = cov[i + (int64_t)c * D];
    double sum_max = 0, sum_r = 0;
    for (int64_t r0 = 0; r0 < n; r0 += OSCORE_VIM_BLOCK) {
        int64_t rows = n - r0 < OSCORE_VIM_BLOCK ? n - r0 : OSCORE_VIM_BLOCK;
        oscore_vim_block(m, feat + r0 * D, rows, x, xs, p, z, r);
        for (int64_t j = 0; j < rows; j++) {
            double mx = z[j * K];
            for (int c = 1; c < K; c++)
                if (z[j * K + c] > mx) mx = z[j * K + c];
            sum_max += mx;
            sum_r += r[j];
        }
    }
    ERR_GOTO_IF(rc, !(sum_r > 0), ERR_INPUT, "ViM: the train features have no residual off the top %d directions",
                dim);
    m->alpha = (sum_max / (double)n) / (sum_r / (double)n);
fail:
    free(cov);
    free(w);
    free(work);
    free(x);
    free(xs);
    free(p);
    free(z);
    free(r);
    if (rc < 0) oscore_vim_free(m);
    return rc;
}

int oscore_vim_score(const oscore_vim *m, const float *feat, int64_t n, double *out) {
    int D = m->D, K = m->K, E = D - m->dim, rc = 0;
    double *x = malloc(sizeof(double) * OSCORE_VIM_BLOCK * (size_t)D), *xs = malloc(sizeof(double) * OSCORE_VIM_BLOCK * (size_t)D);
    double *p = malloc(sizeof(double) * OSCORE_VIM_BLOCK * (size_t)E), *z = malloc(sizeof(double) * OSCORE_VIM_BLOCK * (size_t)K);
    double *r = malloc(sizeof(double) * OSCORE_VIM_BLOCK);
    ERR_GOTO_IF(rc, !x || !xs || !p || !z || !r, ERR_NOMEM, "out of memory (ViM scores)");
    for (int64_t r0 = 0; r0 < n; r0 += OSCORE_VIM_BLOCK) {
        int64_t rows = n - r0 < OSCORE_VIM_BLOCK ? n - r0 : OSCORE_VIM_BLOCK;
        oscore_vim_block(m, feat + r0 * D, rows, x, xs, p, z, r);
        for (int64_t j = 0; j < rows; j++) out[r0 + j] = m->alpha * r[j] - oscore_vim_lse(z + j * K, K);
    }
fail:
    free(x);
    free(xs);
    free(p);
    free(z);
    free(r);
    return rc;
}
