// metrics: OOD detection metrics with the OpenOOD conventions (METHOD.md 8), matching
// scikit-learn 1.2 (roc_curve, precision_recall_curve, auc) as OpenOOD calls them.
//
// OOD is the positive class and a larger score means "more OOD". Ties between scores form one
// step of the curves (one diagonal ROC segment), as in sklearn's _binary_clf_curve.
//   * AUROC: trapezoid area under the ROC curve (= sklearn roc_auc_score).
//   * AUPR-In: area (sklearn auc over precision_recall_curve) with ID positive, score negated.
//   * AUPR-Out: the same with OOD positive and the score as is.
//   * FPR@95TPR: the false-positive rate at the first point of sklearn's roc_curve (with
//     drop_intermediate, the default) whose true-positive rate is >= 0.95.
// All arithmetic is double precision; the scores are sorted once per call.
// Errors: ERR_INPUT for an empty set or a NaN/Inf score (the message says which set and which
// element), ERR_NOMEM. Nothing here prints.
#ifndef DIFFOOD_OOD_METRICS_H
#define DIFFOOD_OOD_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double auroc;    // in [0, 1]
    double aupr_in;  // in [0, 1]
    double aupr_out; // in [0, 1]
    double fpr95;    // in [0, 1]
    size_t n_id, n_ood;
} ood_metrics;

// The four metrics of the ID scores id[0..n_id) against the OOD scores ood[0..n_ood) into *out.
// ERR_INPUT ("ID set is empty", "OOD score 12 is NaN", ...), ERR_NOMEM.
int ood_metrics_compute(const double *id, size_t n_id, const double *ood, size_t n_ood, ood_metrics *out);

// A ROC curve as sklearn roc_curve(drop_intermediate=1) returns it: n points starting at
// (0, 0) and ending at (1, 1); thr[i] is the score threshold of point i (thr[0] = thr[1] + 1).
// The arrays are malloc'd, owned by the curve: release with ood_roc_free.
typedef struct {
    double *fpr, *tpr, *thr;
    size_t n;
} ood_roc;

// The ROC curve (OOD positive) into *out; drop_intermediate != 0 drops collinear points as
// sklearn does (the area is unchanged). ERR_INPUT, ERR_NOMEM (then *out is empty).
int ood_metrics_roc(const double *id, size_t n_id, const double *ood, size_t n_ood, int drop_intermediate,
                    ood_roc *out);
// Frees the arrays of a curve and zeroes it (NULL-safe).
void ood_roc_free(ood_roc *r);

// Counts x[0..n) into bins equal bins over [lo, hi]: bin k holds lo + k*w <= x < lo + (k+1)*w
// (w = (hi - lo) / bins), the last bin also x == hi; values outside [lo, hi] are clamped into
// the first or last bin; non-finite values are skipped. counts[0..bins) is overwritten.
// ERR_USAGE for bins < 1 or !(lo < hi).
int ood_histogram(const double *x, size_t n, double lo, double hi, int bins, double *counts);

// The smallest and largest finite values of x[0..n) into *lo, *hi. ERR_INPUT when none.
int ood_range(const double *x, size_t n, double *lo, double *hi);

#endif
