// ref_misc: reference loops (double) for randomness, losses and optimisers, and the helpers
// the op tests share: deterministic random fills, the error measure, finite differences.
#include "kernels/cpu/ref/ref_ops.h"

#include <math.h>
#include <stdlib.h>

// --- helpers ------------------------------------------------------------------------------------

void ref_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    for (size_t i = 0; i < n; i++) { // splitmix64
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        x[i] = lo + (hi - lo) * (float)((double)(z >> 40) / 16777216.0);
    }
}

float *ref_rand(size_t n, uint64_t seed, float lo, float hi) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (x) ref_fill_uniform(x, n, seed, lo, hi);
    return x;
}

void ref_to_double(double *d, const float *f, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = f[i];
}

double *ref_dup(const float *f, size_t n) {
    if (!f) return NULL;
    double *d = malloc((n ? n : 1) * sizeof *d);
    if (d) ref_to_double(d, f, n);
    return d;
}

double ref_rel_err(const float *a, const double *b, size_t n) {
    double mean = 0;
    for (size_t i = 0; i < n; i++) mean += fabs(b[i]);
    mean = n ? mean / n : 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d == 0) continue;
        double e = d / (fabs(b[i]) + mean);
        if (!(e <= worst)) worst = e; // NaN propagates as the worst
    }
    return worst;
}

void ref_fd_grad(void (*fwd)(void *cfg, double *out), void *cfg, double *param, size_t np, size_t ny,
                 const double *r, double *grad, double h) {
    double *out = malloc(ny * sizeof *out);
    if (!out) return;
    for (size_t j = 0; j < np; j++) {
        double keep = param[j], lp = 0, lm = 0;
        param[j] = keep + h;
        fwd(cfg, out);
        for (size_t i = 0; i < ny; i++) lp += r[i] * out[i];
        param[j] = keep - h;
        fwd(cfg, out);
        for (size_t i = 0; i < ny; i++) lm += r[i] * out[i];
        param[j] = keep;
        grad[j] = (lp - lm) / (2 * h);
    }
    free(out);
}

// --- randomness -----------------------------------------------------------------------------------

void ref_randn(float *y, size_t n, philox_key key, uint64_t offset) {
    for (size_t i = 0; i < n; i++) y[i] = philox_normal_at(key, offset + i);
}

void ref_dropout_fwd(double *y, const double *x, size_t n, double p, philox_key key, uint64_t offset) {
    for (size_t i = 0; i < n; i++) y[i] = philox_uniform_at(key, offset + i) >= p ? x[i] / (1 - p) : 0.0;
}

// --- losses and optimisation ------------------------------------------------------------------------

double ref_mse_sum_loss(const double *pred, const double *target, int n, int per) {
    double s = 0;
    for (size_t i = 0; i < (size_t)n * per; i++) s += (pred[i] - target[i]) * (pred[i] - target[i]);
    return s / n;
}

double ref_softmax_xent_loss(const double *logits, const int32_t *labels, int n, int k) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        const double *z = logits + (size_t)i * k;
        double mx = z[0], s = 0;
        for (int j = 1; j < k; j++) mx = fmax(mx, z[j]);
        for (int j = 0; j < k; j++) s += exp(z[j] - mx);
        total += log(s) + mx - z[labels[i]];
    }
    return total / n;
}

double ref_sumsq(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

void ref_adamw(double *p, const double *g, double *m, double *v, size_t n, double lr, double beta1, double beta2,
               double eps, double wd, int step) {
    double bc1 = 1 - pow(beta1, step), bc2 = 1 - pow(beta2, step);
    for (size_t i = 0; i < n; i++) {
        p[i] *= 1 - lr * wd;
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        double mhat = m[i] / bc1, vhat = v[i] / bc2;
        p[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
}

void ref_sgd(double *p, const double *g, double *buf, size_t n, double lr, double momentum, double wd, int nesterov) {
    for (size_t i = 0; i < n; i++) {
        double d = g[i] + wd * p[i];
        if (momentum != 0) {
            buf[i] = momentum * buf[i] + d;
            d = nesterov ? d + momentum * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}

void ref_ema(double *ema, const double *p, size_t n, double decay) {
    for (size_t i = 0; i < n; i++) ema[i] = decay * ema[i] + (1 - decay) * p[i];
}
