// metrics: AUROC, AUPR-In, AUPR-Out, FPR@95TPR and ROC curves the OpenOOD / scikit-learn way
// (metrics.h). The scores of both sets are joined, sorted once by score, and walked in groups of
// equal scores: from the top for the OOD-positive curves, from the bottom for AUPR-In.
#include "common/ood/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

typedef struct {
    double s;
    int ood; // 1: OOD (positive), 0: ID
} ood_item;

// --- sorting ---------------------------------------------------------------------------------

static int ood_item_cmp(const void *pa, const void *pb) {
    const ood_item *a = pa, *b = pb;
    return (a->s < b->s) ? -1 : (a->s > b->s) ? 1 : 0;
}

static int ood_check(const double *x, size_t n, const char *what) {
    ERR_IF(n == 0, ERR_INPUT, "%s set is empty", what);
    for (size_t i = 0; i < n; i++)
        ERR_IF(!isfinite(x[i]), ERR_INPUT, "%s score %zu is %s", what, i, isnan(x[i]) ? "NaN" : "infinite");
    return 0;
}

// The joined scores sorted ascending into *out (malloc'd, n_id + n_ood items).
static int ood_sorted(const double *id, size_t n_id, const double *ood, size_t n_ood, ood_item **out) {
    *out = NULL;
    ERR_TRY(ood_check(id, n_id, "ID"));
    ERR_TRY(ood_check(ood, n_ood, "OOD"));
    size_t n = n_id + n_ood;
    ood_item *it = malloc(n * sizeof *it);
    ERR_IF(!it, ERR_NOMEM, "out of memory (%zu scores)", n);
    for (size_t i = 0; i < n_id; i++) it[i] = (ood_item){id[i], 0};
    for (size_t i = 0; i < n_ood; i++) it[n_id + i] = (ood_item){ood[i], 1};
    qsort(it, n, sizeof *it, ood_item_cmp);
    *out = it;
    return 0;
}

// --- curves ----------------------------------------------------------------------------------

// sklearn's _binary_clf_curve over the sorted items: walking from the largest score down
// (descending != 0, positive = OOD) or from the smallest up (positive = ID, score negated),
// one point per group of equal scores with the cumulative positives tps[g] and negatives
// fps[g] and the group's score thr[g]. Returns the number of groups (arrays of n entries).
static size_t ood_clf_curve(const ood_item *it, size_t n, int descending, double *fps, double *tps, double *thr) {
    size_t g = 0;
    double tp = 0, fp = 0;
    for (size_t k = 0; k < n; k++) {
        const ood_item *x = &it[descending ? n - 1 - k : k];
        int pos = descending ? x->ood : !x->ood;
        if (pos) tp += 1; else fp += 1;
        const ood_item *nx = k + 1 < n ? &it[descending ? n - 2 - k : k + 1] : NULL;
        if (!nx || nx->s != x->s) {
            fps[g] = fp;
            tps[g] = tp;
            if (thr) thr[g] = descending ? x->s : -x->s;
            g++;
        }
    }
    return g;
}

// sklearn auc(recall, precision) of precision_recall_curve: points (0, 1), then
// (tps[g] / P, tps[g] / (tps[g] + fps[g])) for every group, trapezoids between them.
static double ood_aupr(const double *fps, const double *tps, size_t g) {
    double P = tps[g - 1], area = 0, r0 = 0, p0 = 1;
    for (size_t i = 0; i < g; i++) {
        double r = tps[i] / P, p = tps[i] / (tps[i] + fps[i]);
        area += (r - r0) * (p + p0) / 2.0;
        r0 = r, p0 = p;
    }
    return area;
}

// --- public ----------------------------------------------------------------------------------

void ood_roc_free(ood_roc *r) {
    if (!r) return;
    free(r->fpr);
    free(r->tpr);
    free(r->thr);
    memset(r, 0, sizeof *r);
}

// The ROC curve from the sorted items (see ood_metrics_roc).
static int ood_roc_from(const ood_item *it, size_t n, int drop, ood_roc *out) {
    memset(out, 0, sizeof *out);
    double *fps = malloc(n * sizeof *fps), *tps = malloc(n * sizeof *tps), *thr = malloc(n * sizeof *thr);
    out->fpr = malloc((n + 1) * sizeof(double));
    out->tpr = malloc((n + 1) * sizeof(double));
    out->thr = malloc((n + 1) * sizeof(double));
    if (!fps || !tps || !thr || !out->fpr || !out->tpr || !out->thr) {
        free(fps), free(tps), free(thr);
        ood_roc_free(out);
        return err_set(ERR_NOMEM, "out of memory (ROC curve of %zu scores)", n);
    }
    size_t g = ood_clf_curve(it, n, 1, fps, tps, thr);
    if (g == 0) { // cannot happen: both sets were checked non-empty
        free(fps), free(tps), free(thr);
        ood_roc_free(out);
        return err_set(ERR_INTERNAL, "ROC curve of no scores");
    }
    double P = tps[g - 1], N = fps[g - 1];
    size_t m = 1;
    out->fpr[0] = 0, out->tpr[0] = 0, out->thr[0] = thr[0] + 1;
    for (size_t i = 0; i < g; i++) {
        // sklearn keeps the ends and every point where the second difference of fps or tps is
        // not zero (only when there are more than two points)
        if (drop && g > 2 && i > 0 && i + 1 < g && fps[i + 1] - 2 * fps[i] + fps[i - 1] == 0 &&
            tps[i + 1] - 2 * tps[i] + tps[i - 1] == 0)
            continue;
        out->fpr[m] = fps[i] / N;
        out->tpr[m] = tps[i] / P;
        out->thr[m] = thr[i];
        m++;
    }
    out->n = m;
    free(fps), free(tps), free(thr);
    return 0;
}

int ood_metrics_roc(const double *id, size_t n_id, const double *ood, size_t n_ood, int drop_intermediate,
                    ood_roc *out) {
    memset(out, 0, sizeof *out);
    ood_item *it = NULL;
    ERR_TRY(ood_sorted(id, n_id, ood, n_ood, &it));
    int rc = ood_roc_from(it, n_id + n_ood, drop_intermediate, out);
    free(it);
    return rc;
}

int ood_metrics_compute(const double *id, size_t n_id, const double *ood, size_t n_ood, ood_metrics *out) {
    memset(out, 0, sizeof *out);
    ood_item *it = NULL;
    double *fps = NULL, *tps = NULL;
    ood_roc roc = {0};
    int rc = 0;
    ERR_TRY(ood_sorted(id, n_id, ood, n_ood, &it));
    size_t n = n_id + n_ood;
    fps = malloc(n * sizeof *fps);
    tps = malloc(n * sizeof *tps);
    ERR_GOTO_IF(rc, !fps || !tps, ERR_NOMEM, "out of memory (%zu scores)", n);
    ERR_GOTO(rc, ood_roc_from(it, n, 1, &roc));
    double area = 0;
    for (size_t i = 1; i < roc.n; i++) area += (roc.fpr[i] - roc.fpr[i - 1]) * (roc.tpr[i] + roc.tpr[i - 1]) / 2.0;
    out->auroc = area;
    out->fpr95 = 1.0;
    for (size_t i = 0; i < roc.n; i++)
        if (roc.tpr[i] >= 0.95) {
            out->fpr95 = roc.fpr[i];
            break;
        }
    size_t g = ood_clf_curve(it, n, 1, fps, tps, NULL);
    out->aupr_out = ood_aupr(fps, tps, g);
    g = ood_clf_curve(it, n, 0, fps, tps, NULL);
    out->aupr_in = ood_aupr(fps, tps, g);
    out->n_id = n_id;
    out->n_ood = n_ood;
fail:
    ood_roc_free(&roc);
    free(fps);
    free(tps);
    free(it);
    return rc;
}

int ood_histogram(const double *x, size_t n, double lo, double hi, int bins, double *counts) {
    ERR_IF(bins < 1 || !(lo < hi), ERR_USAGE, "histogram needs bins >= 1 and lo < hi (got %d, [%g, %g])", bins, lo, hi);
    for (int k = 0; k < bins; k++) counts[k] = 0;
    double w = (hi - lo) / bins;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) continue;
        double f = floor((x[i] - lo) / w);
        int k = f < 0 ? 0 : f >= bins ? bins - 1 : (int)f;
        counts[k] += 1;
    }
    return 0;
}

int ood_range(const double *x, size_t n, double *lo, double *hi) {
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) continue;
        if (!any || x[i] < *lo) *lo = x[i];
        if (!any || x[i] > *hi) *hi = x[i];
        any = 1;
    }
    ERR_IF(!any, ERR_INPUT, "no finite value among %zu", n);
    return 0;
}
