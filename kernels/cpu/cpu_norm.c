// cpu_norm: GroupNorm and BatchNorm on the CPU, each with a fused activation (y = act(norm(x))).
//
// Statistics are summed in double per (image, group) or per channel, in a fixed order; the
// backward pass recomputes the pre-activation from x and the saved mean/rstd. GroupNorm's
// dgamma/dbeta are first summed per (image, channel) into the context's partial buffer and
// then over images in order, so nothing depends on the thread count.
#include "kernels/cpu/cpu_internal.h"

#include <omp.h>

#include "common/err.h"
#include "kernels/bn_merge.h"

// y[i] = act(x[i] * a + b) over a row
static inline void cpu_affine_act_row(ops_act act, float *y, const float *x, float a, float b, int n) {
    if (act == OPS_ACT_SWISH) {
#pragma omp simd
        for (int i = 0; i < n; i++) {
            float z = x[i] * a + b;
            y[i] = z / (1.0f + cpu_expf(-z));
        }
    } else if (act == OPS_ACT_RELU) {
#pragma omp simd
        for (int i = 0; i < n; i++) {
            float z = x[i] * a + b;
            y[i] = z > 0.0f ? z : 0.0f;
        }
    } else {
#pragma omp simd
        for (int i = 0; i < n; i++) y[i] = x[i] * a + b;
    }
}

// The backward row loops, one copy per activation so that each vectorises (GCC does not
// unswitch the activation test out of the loop by itself). G(z, d) is d * act'(z).
#define CPU_NORM_BY_ACT(act, LOOP)                                                             \
    do {                                                                                       \
        if ((act) == OPS_ACT_SWISH) {                                                          \
            LOOP(cpu_swish_grad)                                                               \
        } else if ((act) == OPS_ACT_RELU) {                                                    \
            LOOP(cpu_relu_grad)                                                                \
        } else {                                                                               \
            LOOP(cpu_ident_grad)                                                               \
        }                                                                                      \
    } while (0)

// G(z, d) = d * act'(z). ReLU's is a select of d (GCC 12 vectorises `z > 0 ? d : 0` but not
// `d * (z > 0 ? 1 : 0)`: that form made the BatchNorm backward scalar, 20-50x slower).
static inline float cpu_swish_grad(float z, float d) {
    float s = 1.0f / (1.0f + cpu_expf(-z));
    return d * (s * (1.0f + z * (1.0f - s)));
}
static inline float cpu_relu_grad(float z, float d) { return z > 0.0f ? d : 0.0f; }
static inline float cpu_ident_grad(float z, float d) { return d; }

// Sums of g = dy * act'(z) and g * xhat over a row, z = xhat * gamma + beta, xhat = (x - mean) * rstd.
static inline void cpu_norm_row_sums(ops_act act, const float *dy, const float *x, float mean, float rstd, float gamma,
                                     float beta, int n, double *sum_g, double *sum_gx) {
    float sg = 0.0f, sgx = 0.0f;
#define CPU_SUMS_LOOP(G)                                                                       \
    _Pragma("omp simd reduction(+ : sg, sgx)") for (int i = 0; i < n; i++) {                   \
        float xh = (x[i] - mean) * rstd;                                                       \
        float g = G(xh * gamma + beta, dy[i]);                                                 \
        sg += g;                                                                               \
        sgx += g * xh;                                                                         \
    }
    CPU_NORM_BY_ACT(act, CPU_SUMS_LOOP);
#undef CPU_SUMS_LOOP
    *sum_g = sg;
    *sum_gx = sgx;
}

// cpu_norm_row_sums that also stores g[i] = dy[i] * act'(z[i]) (for cpu_norm_row_dx_g: the
// activation's gradient, an exp for swish, is then computed once per element, not twice).
static inline void cpu_norm_row_sums_g(ops_act act, float *restrict gout, const float *dy, const float *x, float mean,
                                       float rstd, float gamma, float beta, int n, double *sum_g, double *sum_gx) {
    float sg = 0.0f, sgx = 0.0f;
#define CPU_SUMS_G_LOOP(G)                                                                     \
    _Pragma("omp simd reduction(+ : sg, sgx)") for (int i = 0; i < n; i++) {                   \
        float xh = (x[i] - mean) * rstd;                                                       \
        float g = G(xh * gamma + beta, dy[i]);                                                 \
        gout[i] = g;                                                                           \
        sg += g;                                                                               \
        sgx += g * xh;                                                                         \
    }
    CPU_NORM_BY_ACT(act, CPU_SUMS_G_LOOP);
#undef CPU_SUMS_G_LOOP
    *sum_g = sg;
    *sum_gx = sgx;
}

// dx[i] += rstd * (gamma * g[i] - c1 - xhat * c2) from the stored g
static inline void cpu_norm_row_dx_g(float *dx, const float *g, const float *x, float mean, float rstd, float gamma,
                                     float c1, float c2, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) {
        float xh = (x[i] - mean) * rstd;
        dx[i] += rstd * (gamma * g[i] - c1 - xh * c2);
    }
}

// dx[i] += rstd * (gamma * g - c1 - xhat * c2)
static inline void cpu_norm_row_dx(ops_act act, float *dx, const float *dy, const float *x, float mean, float rstd,
                                   float gamma, float beta, float c1, float c2, int n) {
#define CPU_DX_LOOP(G)                                                                         \
    _Pragma("omp simd") for (int i = 0; i < n; i++) {                                          \
        float xh = (x[i] - mean) * rstd;                                                       \
        float g = G(xh * gamma + beta, dy[i]);                                                 \
        dx[i] += rstd * (gamma * g - c1 - xh * c2);                                            \
    }
    CPU_NORM_BY_ACT(act, CPU_DX_LOOP);
#undef CPU_DX_LOOP
}

// Mean and variance (biased) of a row: two passes (the second around the first's mean).
static void cpu_row_stats(const float *x, size_t n, double *mean, double *var) {
    double m = cpu_sum_f(x, n) / (double)n;
    *mean = m;
    *var = cpu_sumsq_dev_f(x, n, (float)m) / (double)n;
}

// --- GroupNorm ------------------------------------------------------------------------------------

static int cpu_gn_check(const char *op, ops_act act, int n, int c, int hw, int groups) {
    ERR_TRY(cpu_check_act(op, act));
    if (n <= 0 || c <= 0 || hw <= 0 || groups <= 0 || c % groups)
        return err_set(ERR_USAGE, "%s: invalid shape n=%d c=%d hw=%d groups=%d (dims > 0, groups must divide c)", op, n,
                       c, hw, groups);
    return 0;
}

int cpu_groupnorm_fwd(ops_ctx *ctx, ops_act act, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                      const float *beta, int n, int c, int hw, int groups, float eps) {
    ERR_TRY(cpu_gn_check("groupnorm_fwd", act, n, c, hw, groups));
    int cg = c / groups;
    size_t gsz = (size_t)cg * hw;
    int nt = n * groups > 1 ? cpu_par_threads(ctx, (size_t)4 * n * c * hw) : 1; // a swish exp per element
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < n * groups; t++) {
        int grp = t % groups;
        const float *xg = x + (size_t)t * gsz;
        float *yg = y + (size_t)t * gsz;
        double m, v;
        cpu_row_stats(xg, gsz, &m, &v);
        float rs = (float)(1.0 / sqrt(v + (double)eps));
        mean[t] = (float)m;
        rstd[t] = rs;
        for (int k = 0; k < cg; k++) {
            int ch = grp * cg + k;
            float a = rs * (gamma ? gamma[ch] : 1.0f);
            float b = (beta ? beta[ch] : 0.0f) - (float)m * a;
            cpu_affine_act_row(act, yg + (size_t)k * hw, xg + (size_t)k * hw, a, b, hw);
        }
    }
    return 0;
}

int cpu_groupnorm_bwd(ops_ctx *ctx, ops_act act, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                      const float *mean, const float *rstd, const float *gamma, const float *beta, int n, int c, int hw,
                      int groups) {
    ERR_TRY(cpu_gn_check("groupnorm_bwd", act, n, c, hw, groups));
    int cg = c / groups;
    size_t gsz = (size_t)cg * hw;
    double *part = cpu_partial(ctx, (size_t)2 * n * c); // (N, C, 2): sum g, sum g*xhat
    if (!part) return err_prefix(ERR_NOMEM, "groupnorm_bwd: ");
    int nt = n * groups > 1 ? cpu_par_threads(ctx, (size_t)4 * n * c * hw) : 1;
    // with dx and an activation: g = dy * act'(z) of the group kept per thread for the dx pass
    float *gbuf = NULL;
    if (dx && act != OPS_ACT_NONE) {
        gbuf = cpu_scratch(ctx, gsz * (size_t)nt);
        if (!gbuf) return err_prefix(ERR_NOMEM, "groupnorm_bwd: ");
    }
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < n * groups; t++) {
        int img = t / groups, grp = t % groups;
        const float *xg = x + (size_t)t * gsz, *dyg = dy + (size_t)t * gsz;
        float *gg = gbuf ? gbuf + (size_t)omp_get_thread_num() * gsz : NULL;
        float m = mean[t], rs = rstd[t];
        double sdx = 0.0, sdxx = 0.0; // sums of dxhat = g*gamma and dxhat*xhat over the group
        for (int k = 0; k < cg; k++) {
            int ch = grp * cg + k;
            float ga = gamma ? gamma[ch] : 1.0f, be = beta ? beta[ch] : 0.0f;
            double sg, sgx;
            if (gg)
                cpu_norm_row_sums_g(act, gg + (size_t)k * hw, dyg + (size_t)k * hw, xg + (size_t)k * hw, m, rs, ga, be,
                                    hw, &sg, &sgx);
            else
                cpu_norm_row_sums(act, dyg + (size_t)k * hw, xg + (size_t)k * hw, m, rs, ga, be, hw, &sg, &sgx);
            part[((size_t)img * c + ch) * 2] = sg;
            part[((size_t)img * c + ch) * 2 + 1] = sgx;
            sdx += sg * ga;
            sdxx += sgx * ga;
        }
        if (dx) {
            float c1 = (float)(sdx / (double)gsz), c2 = (float)(sdxx / (double)gsz);
            for (int k = 0; k < cg; k++) {
                int ch = grp * cg + k;
                float ga = gamma ? gamma[ch] : 1.0f, be = beta ? beta[ch] : 0.0f;
                float *dxr = dx + (size_t)t * gsz + (size_t)k * hw;
                if (gg)
                    cpu_norm_row_dx_g(dxr, gg + (size_t)k * hw, xg + (size_t)k * hw, m, rs, ga, c1, c2, hw);
                else
                    cpu_norm_row_dx(act, dxr, dyg + (size_t)k * hw, xg + (size_t)k * hw, m, rs, ga, be, c1, c2, hw);
            }
        }
    }
    for (int ch = 0; ch < c; ch++) {
        double sg = 0.0, sgx = 0.0;
        for (int img = 0; img < n; img++) {
            sg += part[((size_t)img * c + ch) * 2];
            sgx += part[((size_t)img * c + ch) * 2 + 1];
        }
        if (dgamma) dgamma[ch] += (float)sgx;
        if (dbeta) dbeta[ch] += (float)sg;
    }
    return 0;
}

// --- BatchNorm ------------------------------------------------------------------------------------

static int cpu_bn_check(const char *op, ops_act act, int n, int c, int hw) {
    ERR_TRY(cpu_check_act(op, act));
    if (n <= 0 || c <= 0 || hw <= 0)
        return err_set(ERR_USAGE, "%s: invalid shape n=%d c=%d hw=%d (all must be > 0)", op, n, c, hw);
    return 0;
}

// Channel ch's mean and sum of squared deviations from it over n images (two passes, double).
static void cpu_bn_chan_stats(const float *x, int n, int c, int hw, int ch, double *mean, double *m2) {
    double s = 0.0, v = 0.0;
    for (int img = 0; img < n; img++) s += cpu_sum_f(x + ((size_t)img * c + ch) * hw, (size_t)hw);
    double m = s / ((double)n * hw);
    for (int img = 0; img < n; img++) v += cpu_sumsq_dev_f(x + ((size_t)img * c + ch) * hw, (size_t)hw, (float)m);
    *mean = m;
    *m2 = v;
}

int cpu_batchnorm_fwd_train(ops_ctx *ctx, ops_act act, float *y, float *mean, float *rstd, float *running_mean,
                            float *running_var, const float *x, const float *gamma, const float *beta, int n, int c,
                            int hw, float momentum, float eps) {
    ERR_TRY(cpu_bn_check("batchnorm_fwd_train", act, n, c, hw));
    size_t cnt = (size_t)n * hw;
    ERR_IF(cnt < 2, ERR_USAGE, "batchnorm_fwd_train: n*hw=%zu: training needs more than one value per channel (c=%d)",
           cnt, c);
#pragma omp parallel for schedule(static) num_threads(cpu_par_threads(ctx, (size_t)2 * n * c * hw)) if (c > 1)
    for (int ch = 0; ch < c; ch++) {
        double m, v;
        cpu_bn_chan_stats(x, n, c, hw, ch, &m, &v);
        double var = v / (double)cnt;
        float rs = (float)(1.0 / sqrt(var + (double)eps));
        mean[ch] = (float)m;
        rstd[ch] = rs;
        if (running_mean) running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * (float)m;
        if (running_var)
            running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * (float)(v / (double)(cnt - 1));
        float a = rs * (gamma ? gamma[ch] : 1.0f);
        float b = (beta ? beta[ch] : 0.0f) - (float)m * a;
        for (int img = 0; img < n; img++) {
            size_t o = ((size_t)img * c + ch) * hw;
            cpu_affine_act_row(act, y + o, x + o, a, b, hw);
        }
    }
    return 0;
}

// --- sync BatchNorm: the training forward and backward cut at their reductions -----------------

int cpu_batchnorm_stats(ops_ctx *ctx, float *part, const float *x, int n, int c, int hw) {
    ERR_TRY(cpu_bn_check("batchnorm_stats", OPS_ACT_NONE, n, c, hw));
#pragma omp parallel for schedule(static) num_threads(cpu_par_threads(ctx, (size_t)2 * n * c * hw)) if (c > 1)
    for (int ch = 0; ch < c; ch++) {
        double m, v;
        cpu_bn_chan_stats(x, n, c, hw, ch, &m, &v);
        part[ch] = (float)m;
        part[c + ch] = (float)v;
    }
    return 0;
}

int cpu_batchnorm_stats_merge(ops_ctx *ctx, float *mean, float *var, float *rstd, float *running_mean,
                              float *running_var, const float *parts, const int *counts, int r, int c, float momentum,
                              float eps) {
    (void)ctx;
    ERR_IF(r < 1 || c < 1 || !counts, ERR_USAGE, "batchnorm_stats_merge: invalid shape r=%d c=%d (both > 0, counts given)",
           r, c);
    double total = 0.0;
    for (int s = 0; s < r; s++) {
        ERR_IF(counts[s] < 1, ERR_USAGE, "batchnorm_stats_merge: slice %d has %d values per channel (must be > 0)", s,
               counts[s]);
        total += counts[s];
    }
    ERR_IF(total < 2, ERR_USAGE, "batchnorm_stats_merge: %.0f values per channel: training needs more than one", total);
    for (int ch = 0; ch < c; ch++)
        bn_merge_chan(parts, counts, r, c, ch, total, momentum, eps, mean, var, rstd, running_mean, running_var);
    return 0;
}

int cpu_batchnorm_bwd_sums(ops_ctx *ctx, ops_act act, float *sums, const float *dy, const float *x, const float *mean,
                           const float *rstd, const float *gamma, const float *beta, int n, int c, int hw) {
    ERR_TRY(cpu_bn_check("batchnorm_bwd_sums", act, n, c, hw));
#pragma omp parallel for schedule(static) num_threads(cpu_par_threads(ctx, (size_t)2 * n * c * hw)) if (c > 1)
    for (int ch = 0; ch < c; ch++) {
        float ga = gamma ? gamma[ch] : 1.0f, be = beta ? beta[ch] : 0.0f;
        double sg = 0.0, sgx = 0.0;
        for (int img = 0; img < n; img++) {
            size_t o = ((size_t)img * c + ch) * hw;
            double a, b;
            cpu_norm_row_sums(act, dy + o, x + o, mean[ch], rstd[ch], ga, be, hw, &a, &b);
            sg += a;
            sgx += b;
        }
        sums[ch] = (float)sg;
        sums[c + ch] = (float)sgx;
    }
    return 0;
}

int cpu_batchnorm_bwd_dx(ops_ctx *ctx, ops_act act, float *dx, const float *dy, const float *x, const float *mean,
                         const float *rstd, const float *gamma, const float *beta, const float *sums, int count, int n,
                         int c, int hw) {
    ERR_TRY(cpu_bn_check("batchnorm_bwd_dx", act, n, c, hw));
    ERR_IF(count < n * hw, ERR_USAGE, "batchnorm_bwd_dx: count %d below the slice's %d values per channel", count,
           n * hw);
#pragma omp parallel for schedule(static) num_threads(cpu_par_threads(ctx, (size_t)2 * n * c * hw)) if (n * c > 1)
    for (int t = 0; t < n * c; t++) {
        int ch = t % c;
        float ga = gamma ? gamma[ch] : 1.0f, be = beta ? beta[ch] : 0.0f;
        float c1 = (float)(ga * (double)sums[ch] / count), c2 = (float)(ga * (double)sums[c + ch] / count);
        size_t o = (size_t)t * hw;
        cpu_norm_row_dx(act, dx + o, dy + o, x + o, mean[ch], rstd[ch], ga, be, c1, c2, hw);
    }
    return 0;
}

int cpu_batchnorm_fwd_eval(ops_ctx *ctx, ops_act act, float *y, const float *x, const float *gamma, const float *beta,
                           const float *running_mean, const float *running_var, int n, int c, int hw, float eps) {
    ERR_TRY(cpu_bn_check("batchnorm_fwd_eval", act, n, c, hw));
#pragma omp parallel for schedule(static) num_threads(cpu_par_threads(ctx, (size_t)2 * n * c * hw)) if (n * c > 1)
    for (int t = 0; t < n * c; t++) {
        int ch = t % c;
        float rs = (float)(1.0 / sqrt((double)running_var[ch] + (double)eps));
        float a = rs * (gamma ? gamma[ch] : 1.0f);
        float b = (beta ? beta[ch] : 0.0f) - running_mean[ch] * a;
        cpu_affine_act_row(act, y + (size_t)t * hw, x + (size_t)t * hw, a, b, hw);
    }
    return 0;
}

int cpu_batchnorm_bwd(ops_ctx *ctx, ops_act act, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                      const float *mean, const float *rstd, const float *gamma, const float *beta, int n, int c, int hw) {
    ERR_TRY(cpu_bn_check("batchnorm_bwd", act, n, c, hw));
    size_t cnt = (size_t)n * hw;
#pragma omp parallel for schedule(static) num_threads(cpu_par_threads(ctx, (size_t)2 * n * c * hw)) if (c > 1)
    for (int ch = 0; ch < c; ch++) {
        float m = mean[ch], rs = rstd[ch];
        float ga = gamma ? gamma[ch] : 1.0f, be = beta ? beta[ch] : 0.0f;
        double sg = 0.0, sgx = 0.0;
        for (int img = 0; img < n; img++) {
            size_t o = ((size_t)img * c + ch) * hw;
            double a, b;
            cpu_norm_row_sums(act, dy + o, x + o, m, rs, ga, be, hw, &a, &b);
            sg += a;
            sgx += b;
        }
        if (dgamma) dgamma[ch] += (float)sgx;
        if (dbeta) dbeta[ch] += (float)sg;
        if (dx) {
            float c1 = (float)(ga * sg / (double)cnt), c2 = (float)(ga * sgx / (double)cnt);
            for (int img = 0; img < n; img++) {
                size_t o = ((size_t)img * c + ch) * hw;
                cpu_norm_row_dx(act, dx + o, dy + o, x + o, m, rs, ga, be, c1, c2, hw);
            }
        }
    }
    return 0;
}
