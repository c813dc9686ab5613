// scores: per-image out-of-distribution scores (METHOD.md 7 and 9), oriented LARGER = MORE OOD.
//
// * DiffOOD (oscore_diffood): L1 distances between L2-normalised logits or features of the
//   denoised repeats at successive noise levels (global: to the first level, local: to the
//   previous level), averaged over the repeats.
// * Baselines from the clean image, following OpenOOD's postprocessors and negated (OpenOOD's
//   scores are "higher = more ID"): MSP, MLS, EBO (oscore_msp/mls/ebo), MDS (oscore_mds_*),
//   KNN (oscore_knn_*), ReAct (oscore_react*), ViM (oscore_vim_*).
// * Loading a Features store (docs/FORMATS.md) into memory: oscore_features_load.
//
// Arithmetic is double precision; linear algebra goes through BLAS/LAPACK (OpenBLAS).
// Inputs are row-major float32 arrays with shape comments; outputs double arrays the caller
// allocates. Functions return 0 or a negative err.h code (ERR_NOMEM, ERR_INPUT, ERR_INTERNAL for a
// LAPACK failure) with a message; none prints or exits.
#ifndef DIFFOOD_OOD_SCORES_H
#define DIFFOOD_OOD_SCORES_H

#include <stdint.h>

#include "common/hash.h"

// --- DiffOOD ---------------------------------------------------------------------------------
// u: (n, L, R, d) vectors (logits or features) of the denoised repeats, level-major per image
// (level i in 0..L-1, repeat k in 0..R-1). With v = u / (||u||_2 + 1e-10):
//     global[j, i] = mean_k ||v(0, k) - v(i, k)||_1,  local[j, i] = mean_k ||v(i-1, k) - v(i, k)||_1
// for i >= 1; column 0 of both is 0. global, local: (n, L). L >= 1, R >= 1, d >= 1.
void oscore_diffood(const float *u, int64_t n, int L, int R, int64_t d, double *global, double *local);

// --- softmax-family baselines on logits (n, K) -> out (n) -------------------------------------
// MSP: -max softmax.
void oscore_msp(const float *logit, int64_t n, int K, double *out);
// MLS: -max logit.
void oscore_mls(const float *logit, int64_t n, int K, double *out);
// EBO (T = 1): -logsumexp(logit).
void oscore_ebo(const float *logit, int64_t n, int K, double *out);

// --- MDS (OpenOOD mds_postprocessor) ---------------------------------------------------------
typedef struct {
    int K, D;
    double *mean;      // (K, D) class means of the train features
    uint8_t *present;  // (K) 1 when the class has train samples (absent classes are skipped)
    double *precision; // (D, D) inverse of (shared covariance + eps I)
} oscore_mds;

// Fits class means (by label) and the shared covariance of the class-centred train features
// (sklearn EmpiricalCovariance(assume_centered=False): centred once more by their overall mean,
// divided by n), plus eps on the diagonal, inverted by Cholesky (dpotrf/dpotri).
// feat (n, D), label (n) in 0..K-1. ERR_INPUT (label out of range, n == 0, covariance not
// positive definite), ERR_NOMEM. *m owned by the caller (oscore_mds_free).
int oscore_mds_fit(oscore_mds *m, const float *feat, const int32_t *label, int64_t n, int D, int K,
                   double eps);
// out[j] = min over present classes of (x - mu_c)^T P (x - mu_c)  (= -OpenOOD's conf). feat (n, D).
int oscore_mds_score(const oscore_mds *m, const float *feat, int64_t n, double *out);
void oscore_mds_free(oscore_mds *m);

// --- KNN (OpenOOD knn_postprocessor, faiss IndexFlatL2) ---------------------------------------
typedef struct {
    int64_t n;
    int D;
    double *train; // (n, D) normalised train features
    double *sq;    // (n) their squared norms
} oscore_knn;

// Keeps the normalised train features x / ||x|| + 1e-10 (OpenOOD's normaliser, verbatim).
int oscore_knn_fit(oscore_knn *m, const float *feat, int64_t n, int D);
// out[j] = squared L2 distance (faiss IndexFlatL2's measure) from the normalised query to its
// k-th nearest normalised train feature (= -OpenOOD's score). Exact: dgemm blocks and a
// selection per query. ERR_INPUT when k < 1 or k > n.
int oscore_knn_score(const oscore_knn *m, const float *feat, int64_t n, int k, double *out);
void oscore_knn_free(oscore_knn *m);

// --- ReAct -----------------------------------------------------------------------------------
// The `pct` percentile (0..100) of all n * D values of feat, numpy's default linear interpolation.
int oscore_percentile(const float *x, int64_t count, double pct, double *out);
// out[j] = -logsumexp(W min(x_j, thr) + b). feat (n, D), W (K, D), b (K).
void oscore_react(const float *feat, int64_t n, int D, const float *W, const float *b, int K,
                  double thr, double *out);

// --- ViM (OpenOOD vim_postprocessor) ---------------------------------------------------------
typedef struct {
    int K, D, dim;
    double *W, *b;  // (K, D), (K): the classifier's fc
    double *u;      // (D) origin -pinv(W) b
    double *ns;     // (D, D - dim) eigenvectors of the D - dim smallest eigenvalues
    double alpha;   // mean max train logit / mean train residual norm
} oscore_vim;

// The principal dimension OpenOOD uses for a feature width: D >= 2048: 1000, D >= 768: 512,
// else D / 2.
int oscore_vim_default_dim(int D);
// Fits ViM on the train features (n, D) with fc W (K, D), b (K); dim in 1..D-1 (0: default).
// ERR_INPUT (bad dim, n == 0), ERR_INTERNAL (LAPACK), ERR_NOMEM.
int oscore_vim_fit(oscore_vim *m, const float *feat, int64_t n, int D, const float *W, const float *b,
                   int K, int dim);
// out[j] = alpha ||(x - u) NS|| - logsumexp(W x + b)  (= -OpenOOD's score). feat (n, D).
int oscore_vim_score(const oscore_vim *m, const float *feat, int64_t n, double *out);
void oscore_vim_free(oscore_vim *m);

// --- Features stores -------------------------------------------------------------------------
#define OSCORE_MAX_LEVELS 64

typedef struct {
    char *path;
    char key[HASH_HEX_LEN + 1]; // the store's key
    char *set;                  // meta `set` (may be "")
    char *source;               // "images" or "samples"
    char *classifier_key;
    char *classifier;           // meta `classifier` (absolute path of the checkpoint), or NULL
    int K, D;
    int64_t n;
    uint32_t *index;            // (n) image indices, increasing
    float *logit;               // (n, K)
    float *feature;             // (n, D)
    int32_t *label;             // (n) or NULL without a `label` table
    int L, R;                   // samples only (else 0)
    int levels[OSCORE_MAX_LEVELS];
    float *sample_logit;        // (n, L, R, K) or NULL
    float *sample_feature;      // (n, L, R, D) or NULL
} oscore_features;

// Loads a complete Features store: meta, the clean tables and, when want_samples != 0 and the
// source is "samples", every (index, level, repeat) of the sample tables. Checks shapes, that
// every clean table holds the same indices and every sample record is there, and that every
// value is finite. Errors name the store: ERR_NOTFOUND, ERR_INPUT (incomplete store, wrong
// shapes, missing records, NaN/Inf, no images), store errors. Free with oscore_features_free.
int oscore_features_load(oscore_features *f, const char *path, int want_samples);
void oscore_features_free(oscore_features *f);

// Reads the classifier's fc from the checkpoint store at `path`: records `fc.weight` (K, D) and
// `fc.bias` (K) of table best_param (param when absent), f32. *W, *b malloc'd (caller frees).
// ERR_INPUT (shapes other than K, D), store errors naming the path.
int oscore_load_fc(const char *path, int K, int D, float **W, float **b);

#endif
