// ref_nn: reference loops (double) for the network ops: convolution, linear, batched GEMM,
// GroupNorm/BatchNorm with activation, shape ops, softmax and embeddings. Written for clarity,
// straight from each op's definition in kernels/ops.h; speed does not matter here.
#include "kernels/cpu/ref/ref_ops.h"

#include <math.h>
#include <string.h>

double ref_act(ops_act act, double z) {
    if (act == OPS_ACT_RELU) return z > 0 ? z : 0;
    if (act == OPS_ACT_SWISH) return z / (1.0 + exp(-z));
    return z;
}

void ref_act_fwd(ops_act act, double *y, const double *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = ref_act(act, x[i]);
}

// --- convolution and GEMM -------------------------------------------------------------------------

void ref_conv2d_fwd(const ops_conv_shape *s, double *y, const double *x, const double *w, const double *b) {
    int ho = ops_conv_out_h(s), wo = ops_conv_out_w(s);
    for (int n = 0; n < s->n; n++)
        for (int co = 0; co < s->c_out; co++)
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++) {
                    double acc = b ? b[co] : 0.0;
                    for (int ci = 0; ci < s->c_in; ci++)
                        for (int i = 0; i < s->kh; i++)
                            for (int j = 0; j < s->kw; j++) {
                                int ih = oh * s->stride - s->pad_t + i, iw = ow * s->stride - s->pad_l + j;
                                if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w) continue; // zero padding
                                acc += x[((n * s->c_in + ci) * s->h + ih) * s->w + iw] *
                                       w[((co * s->c_in + ci) * s->kh + i) * s->kw + j];
                            }
                    y[((n * s->c_out + co) * ho + oh) * wo + ow] = acc;
                }
}

void ref_linear_fwd(double *y, const double *x, const double *w, const double *b, int n, int in, int out) {
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int k = 0; k < in; k++) acc += x[i * in + k] * w[o * in + k];
            y[i * out + o] = acc;
        }
}

void ref_bmm(double *c, const double *a, const double *b, int batch, int m, int n, int k, int ta, int tb, double alpha,
             double beta) {
    for (int q = 0; q < batch; q++) {
        const double *aq = a + (size_t)q * m * k, *bq = b + (size_t)q * k * n;
        double *cq = c + (size_t)q * m * n;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double acc = 0.0;
                for (int p = 0; p < k; p++) {
                    double av = ta ? aq[p * m + i] : aq[i * k + p];
                    double bv = tb ? bq[j * k + p] : bq[p * n + j];
                    acc += av * bv;
                }
                cq[i * n + j] = alpha * acc + (beta != 0.0 ? beta * cq[i * n + j] : 0.0);
            }
    }
}

// --- normalisation --------------------------------------------------------------------------------

void ref_groupnorm_fwd(ops_act act, double *y, double *mean, double *rstd, const double *x, const double *gamma,
                       const double *beta, int n, int c, int hw, int groups, double eps) {
    int cg = c / groups;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < groups; g++) {
            const double *xg = x + ((size_t)i * c + (size_t)g * cg) * hw;
            double *yg = y + ((size_t)i * c + (size_t)g * cg) * hw;
            size_t cnt = (size_t)cg * hw;
            double m = 0, v = 0;
            for (size_t j = 0; j < cnt; j++) m += xg[j];
            m /= cnt;
            for (size_t j = 0; j < cnt; j++) v += (xg[j] - m) * (xg[j] - m);
            v /= cnt;
            double rs = 1.0 / sqrt(v + eps);
            if (mean) mean[i * groups + g] = m;
            if (rstd) rstd[i * groups + g] = rs;
            for (size_t j = 0; j < cnt; j++) {
                int ch = g * cg + (int)(j / hw);
                yg[j] = ref_act(act, (xg[j] - m) * rs * gamma[ch] + beta[ch]);
            }
        }
}

void ref_batchnorm_fwd_train(ops_act act, double *y, double *mean, double *rstd, double *running_mean,
                             double *running_var, const double *x, const double *gamma, const double *beta, int n,
                             int c, int hw, double momentum, double eps) {
    size_t cnt = (size_t)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double m = 0, v = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) m += x[((size_t)i * c + ch) * hw + j];
        m /= cnt;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                double d = x[((size_t)i * c + ch) * hw + j] - m;
                v += d * d;
            }
        double var = v / cnt, rs = 1.0 / sqrt(var + eps);
        if (mean) mean[ch] = m;
        if (rstd) rstd[ch] = rs;
        if (running_mean) running_mean[ch] = (1 - momentum) * running_mean[ch] + momentum * m;
        if (running_var) running_var[ch] = (1 - momentum) * running_var[ch] + momentum * v / (cnt - 1);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t o = ((size_t)i * c + ch) * hw + j;
                y[o] = ref_act(act, (x[o] - m) * rs * gamma[ch] + beta[ch]);
            }
    }
}

void ref_batchnorm_fwd_eval(ops_act act, double *y, const double *x, const double *gamma, const double *beta,
                            const double *running_mean, const double *running_var, int n, int c, int hw, double eps) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++) {
                size_t o = ((size_t)i * c + ch) * hw + j;
                y[o] = ref_act(act, (x[o] - running_mean[ch]) / sqrt(running_var[ch] + eps) * gamma[ch] + beta[ch]);
            }
}

// --- shape ops ------------------------------------------------------------------------------------

void ref_add_channel_bias(double *y, const double *x, const double *bias, int n, int c, int hw) {
    for (int i = 0; i < n * c; i++)
        for (int j = 0; j < hw; j++) y[(size_t)i * hw + j] = x[(size_t)i * hw + j] + bias[i];
}

void ref_concat_fwd(double *y, const double *a, const double *b, int n, int ca, int cb, int hw) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < ca + cb; ch++)
            for (int j = 0; j < hw; j++)
                y[((size_t)i * (ca + cb) + ch) * hw + j] =
                    ch < ca ? a[((size_t)i * ca + ch) * hw + j] : b[((size_t)i * cb + ch - ca) * hw + j];
}

void ref_upsample2x_fwd(double *y, const double *x, int n, int c, int h, int w) {
    for (int p = 0; p < n * c; p++)
        for (int i = 0; i < 2 * h; i++)
            for (int j = 0; j < 2 * w; j++)
                y[((size_t)p * 2 * h + i) * 2 * w + j] = x[((size_t)p * h + i / 2) * w + j / 2];
}

void ref_avgpool_fwd(double *y, const double *x, int n, int c, int hw) {
    for (int p = 0; p < n * c; p++) {
        double s = 0;
        for (int j = 0; j < hw; j++) s += x[(size_t)p * hw + j];
        y[p] = s / hw;
    }
}

// --- softmax, embeddings ----------------------------------------------------------------------------

void ref_softmax_fwd(double *y, const double *x, int rows, int cols, double scale) {
    for (int r = 0; r < rows; r++) {
        const double *xr = x + (size_t)r * cols;
        double *yr = y + (size_t)r * cols;
        double mx = scale * xr[0], s = 0;
        for (int i = 1; i < cols; i++) mx = fmax(mx, scale * xr[i]);
        for (int i = 0; i < cols; i++) s += exp(scale * xr[i] - mx);
        for (int i = 0; i < cols; i++) yr[i] = exp(scale * xr[i] - mx) / s;
    }
}

void ref_embedding_fwd(double *y, const double *table, const int32_t *ids, int n, int dim) {
    for (int i = 0; i < n; i++) memcpy(y + (size_t)i * dim, table + (size_t)ids[i] * dim, (size_t)dim * sizeof(double));
}

void ref_timestep_embedding(double *y, const float *t, int n, int dim) {
    int half = dim / 2;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < half; k++) {
            double f = half > 1 ? exp(-k * log(10000.0) / (half - 1)) : 1.0;
            y[(size_t)i * dim + k] = sin(t[i] * f);
            y[(size_t)i * dim + half + k] = cos(t[i] * f);
        }
        if (dim % 2) y[(size_t)i * dim + dim - 1] = 0.0;
    }
}
