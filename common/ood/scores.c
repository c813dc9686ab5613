// scores: DiffOOD's global/local distances and the scores that need only logits or a fixed clip
// (MSP, MLS, EBO, ReAct) plus numpy's percentile; see scores.h.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/ood/scores.h"
#include "common/ood/scores_select.h"

// --- DiffOOD ---------------------------------------------------------------------------------

// v = u / (||u||_2 + 1e-10) in double.
static void oscore_normalise(const float *u, int64_t d, double *v) {
    double s = 0;
    for (int64_t i = 0; i < d; i++) s += (double)u[i] * u[i];
    double inv = 1.0 / (sqrt(s) + 1e-10);
    for (int64_t i = 0; i < d; i++) v[i] = u[i] * inv;
}

static double oscore_l1(const double *a, const double *b, int64_t d) {
    double s = 0;
    for (int64_t i = 0; i < d; i++) s += fabs(a[i] - b[i]);
    return s;
}

void oscore_diffood(const float *u, int64_t n, int L, int R, int64_t d, double *global, double *local) {
#pragma omp parallel
    {
        double *v = malloc(sizeof(double) * (size_t)L * (size_t)d);
#pragma omp for schedule(static)
        for (int64_t j = 0; j < n; j++) {
            double *g = global + j * L, *l = local + j * L;
            for (int i = 0; i < L; i++) g[i] = l[i] = 0;
            if (!v) continue; // cannot happen in practice; leaves zeros
            for (int k = 0; k < R; k++) {
                for (int i = 0; i < L; i++)
                    oscore_normalise(u + ((j * L + i) * R + k) * d, d, v + (int64_t)i * d);
                for (int i = 1; i < L; i++) {
                    g[i] += oscore_l1(v, v + (int64_t)i * d, d);
                    l[i] += oscore_l1(v + (int64_t)(i - 1) * d, v + (int64_t)i * d, d);
                }
            }
            for (int i = 1; i < L; i++) {
                g[i] /= R;
                l[i] /= R;
            }
        }
        free(v);
    }
}

// --- logit baselines -------------------------------------------------------------------------

static double oscore_max(const float *x, int K) {
    double m = x[0];
    for (int c = 1; c < K; c++)
        if (x[c] > m) m = x[c];
    return m;
}

static double oscore_lse(const double *x, int K) {
    double m = x[0];
    for (int c = 1; c < K; c++)
        if (x[c] > m) m = x[c];
    double s = 0;
    for (int c = 0; c < K; c++) s += exp(x[c] - m);
    return m + log(s);
}

static double oscore_lse_f(const float *x, int K) {
    double m = oscore_max(x, K), s = 0;
    for (int c = 0; c < K; c++) s += exp(x[c] - m);
    return m + log(s);
}

void oscore_msp(const float *logit, int64_t n, int K, double *out) {
    for (int64_t j = 0; j < n; j++) {
        const float *x = logit + j * K;
        // max softmax = 1 / sum exp(x_c - max)
        double m = oscore_max(x, K), s = 0;
        for (int c = 0; c < K; c++) s += exp(x[c] - m);
        out[j] = -1.0 / s;
    }
}

void oscore_mls(const float *logit, int64_t n, int K, double *out) {
    for (int64_t j = 0; j < n; j++) out[j] = -oscore_max(logit + j * K, K);
}

void oscore_ebo(const float *logit, int64_t n, int K, double *out) {
    for (int64_t j = 0; j < n; j++) out[j] = -oscore_lse_f(logit + j * K, K);
}

// --- percentile and ReAct --------------------------------------------------------------------


int oscore_percentile(const float *x, int64_t count, double pct, double *out) {
    ERR_IF(count < 1, ERR_INPUT, "percentile of no values");
    ERR_IF(!(pct >= 0 && pct <= 100), ERR_INPUT, "percentile %g outside 0..100", pct);
    float *a = malloc(sizeof(float) * (size_t)count);
    ERR_IF(!a, ERR_NOMEM, "out of memory (%lld values for a percentile)", (long long)count);
    memcpy(a, x, sizeof(float) * (size_t)count);
    double h = (double)(count - 1) * pct / 100.0;
    int64_t lo = (int64_t)floor(h);
    if (lo > count - 1) lo = count - 1;
    double t = h - (double)lo;
    double a0 = oscore_select(a, count, lo), a1 = a0;
    if (lo + 1 < count) {
        // the next order statistic is the minimum of the part above lo
        float m = a[lo + 1];
        for (int64_t i = lo + 2; i < count; i++)
            if (a[i] < m) m = a[i];
        a1 = m;
    }
    free(a);
    // numpy's _lerp: a + (b - a) t, computed from the upper end when t >= 0.5
    double d = a1 - a0;
    *out = t >= 0.5 ? a1 - d * (1 - t) : a0 + d * t;
    return 0;
}

void oscore_react(const float *feat, int64_t n, int D, const float *W, const float *b, int K,
                  double thr, double *out) {
#pragma omp parallel
    {
        double *z = malloc(sizeof(double) * (size_t)K * 2), *x = malloc(sizeof(double) * (size_t)D);
#pragma omp for schedule(static)
        for (int64_t j = 0; j < n; j++) {
            if (!z || !x) {
                out[j] = NAN; // cannot happen in practice; the stage rejects NaN scores
                continue;
            }
            for (int i = 0; i < D; i++) {
                double v = feat[j * D + i];
                x[i] = v < thr ? v : thr;
            }
            for (int c = 0; c < K; c++) {
                double s = b[c];
                for (int i = 0; i < D; i++) s += (double)W[(int64_t)c * D + i] * x[i];
                z[c] = s;
            }
            out[j] = -oscore_lse(z, K);
        }
        free(z);
        free(x);
    }
}
