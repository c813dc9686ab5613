// cpu_conv: 2-D convolution on the CPU: forward, backward-data and backward-weight/bias.
//
// Method: im2col + one OpenBLAS sgemm per chunk of images. A chunk holds enough images that the
// GEMM has at least CPU_CONV_COLS columns (one image when its output plane alone is that big),
// so the small planes deep in a UNet still make well-shaped GEMMs. The column matrix lives in
// the context's scratch buffer (grown on first use, reused afterwards). 1x1, stride-1, pad-0
// convolutions skip im2col: the image itself is the column matrix (one sgemm per image).
// im2col/col2im run under OpenMP over (image, input channel) pairs, which write disjoint
// memory, so results are deterministic; sgemm is never called inside an OpenMP region.
#include "kernels/cpu/cpu_internal.h"

#include <cblas.h>

#include "common/err.h"

#define CPU_CONV_COLS 1024

typedef struct {
    int ho, wo, hwo, hw; // output plane, input plane size
    int kk;              // c_in * kh * kw (rows of the column matrix)
    int pointwise;       // 1x1, stride 1, no padding
    int nb;              // images per chunk
} cpu_conv_geo;

static int cpu_conv_geometry(const char *op, const ops_conv_shape *s, cpu_conv_geo *g) {
    if (s->n <= 0 || s->c_in <= 0 || s->h <= 0 || s->w <= 0 || s->c_out <= 0 || s->kh <= 0 || s->kw <= 0 ||
        s->stride <= 0 || s->pad_t < 0 || s->pad_l < 0 || s->pad_b < 0 || s->pad_r < 0 || ops_conv_out_h(s) <= 0 ||
        ops_conv_out_w(s) <= 0 || s->h + s->pad_t + s->pad_b < s->kh || s->w + s->pad_l + s->pad_r < s->kw)
        return err_set(ERR_USAGE,
                       "%s: invalid shape x (%d, %d, %d, %d), w (%d, %d, %d, %d), stride %d, pad t%d l%d b%d r%d "
                       "(dims and stride must be > 0, pads >= 0, the output non-empty)",
                       op, s->n, s->c_in, s->h, s->w, s->c_out, s->c_in, s->kh, s->kw, s->stride, s->pad_t, s->pad_l,
                       s->pad_b, s->pad_r);
    g->ho = ops_conv_out_h(s);
    g->wo = ops_conv_out_w(s);
    g->hwo = g->ho * g->wo;
    g->hw = s->h * s->w;
    g->kk = s->c_in * s->kh * s->kw;
    g->pointwise = s->kh == 1 && s->kw == 1 && s->stride == 1 && !s->pad_t && !s->pad_l && !s->pad_b && !s->pad_r;
    int nb = g->hwo >= CPU_CONV_COLS ? 1 : (CPU_CONV_COLS + g->hwo - 1) / g->hwo;
    g->nb = nb < s->n ? nb : s->n;
    return 0;
}

// --- im2col / col2im ------------------------------------------------------------------------------

// Rows of the column matrix for input channel c of one image: row (c*kh + i)*kw + j, columns
// [col0, col0 + hwo) of a matrix with `ld` columns.
static void cpu_im2col_channel(const ops_conv_shape *s, const cpu_conv_geo *g, const float *xc, float *col, size_t ld,
                               size_t col0, int c) {
    for (int i = 0; i < s->kh; i++) {
        for (int j = 0; j < s->kw; j++) {
            float *row = col + (size_t)((c * s->kh + i) * s->kw + j) * ld + col0;
            // valid ow range: 0 <= ow*stride - pad_l + j < w
            int lo = s->pad_l - j > 0 ? (s->pad_l - j + s->stride - 1) / s->stride : 0;
            int hi = (s->w - 1 + s->pad_l - j) >= 0 ? (s->w - 1 + s->pad_l - j) / s->stride + 1 : 0;
            if (hi > g->wo) hi = g->wo;
            if (lo > hi) lo = hi;
            for (int oh = 0; oh < g->ho; oh++) {
                float *dst = row + (size_t)oh * g->wo;
                int ih = oh * s->stride - s->pad_t + i;
                if (ih < 0 || ih >= s->h) {
                    memset(dst, 0, (size_t)g->wo * sizeof(float));
                    continue;
                }
                const float *src = xc + (size_t)ih * s->w;
                int off = j - s->pad_l; // input column of ow is ow*stride + off
                for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                if (s->stride == 1) {
                    if (hi > lo) memcpy(dst + lo, src + (lo + off), (size_t)(hi - lo) * sizeof(float));
                } else {
                    for (int ow = lo; ow < hi; ow++) dst[ow] = src[ow * s->stride + off];
                }
                for (int ow = hi; ow < g->wo; ow++) dst[ow] = 0.0f;
            }
        }
    }
}

// col (KK, nbc*hwo) from images x[0..nbc) (each (C_in, H, W)).
static void cpu_im2col(ops_ctx *ctx, const ops_conv_shape *s, const cpu_conv_geo *g, const float *x, float *col, int nbc) {
    size_t ld = (size_t)nbc * g->hwo;
    int total = nbc * s->c_in;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(ctx)) if (total > 1)
    for (int t = 0; t < total; t++) {
        int img = t / s->c_in, c = t % s->c_in;
        cpu_im2col_channel(s, g, x + ((size_t)img * s->c_in + c) * g->hw, col, ld, (size_t)img * g->hwo, c);
    }
}

// dx[0..nbc) += col2im(col): each (image, input channel) plane is one task, its adds in a fixed order.
static void cpu_col2im(ops_ctx *ctx, const ops_conv_shape *s, const cpu_conv_geo *g, const float *col, float *dx, int nbc) {
    size_t ld = (size_t)nbc * g->hwo;
    int total = nbc * s->c_in;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(ctx)) if (total > 1)
    for (int t = 0; t < total; t++) {
        int img = t / s->c_in, c = t % s->c_in;
        float *dxc = dx + ((size_t)img * s->c_in + c) * g->hw;
        for (int i = 0; i < s->kh; i++) {
            for (int j = 0; j < s->kw; j++) {
                const float *row = col + (size_t)((c * s->kh + i) * s->kw + j) * ld + (size_t)img * g->hwo;
                int lo = s->pad_l - j > 0 ? (s->pad_l - j + s->stride - 1) / s->stride : 0;
                int hi = (s->w - 1 + s->pad_l - j) >= 0 ? (s->w - 1 + s->pad_l - j) / s->stride + 1 : 0;
                if (hi > g->wo) hi = g->wo;
                for (int oh = 0; oh < g->ho; oh++) {
                    int ih = oh * s->stride - s->pad_t + i;
                    if (ih < 0 || ih >= s->h) continue;
                    float *dst = dxc + (size_t)ih * s->w;
                    const float *src = row + (size_t)oh * g->wo;
                    int off = j - s->pad_l;
                    if (s->stride == 1) {
#pragma omp simd
                        for (int ow = lo; ow < hi; ow++) dst[ow + off] += src[ow];
                    } else {
                        for (int ow = lo; ow < hi; ow++) dst[ow * s->stride + off] += src[ow];
                    }
                }
            }
        }
    }
}

// Copies images' planes (nbc, C, hwo) to/from a (C, nbc*hwo) matrix; `add_bias` adds b (C).
static void cpu_chunk_gather(ops_ctx *ctx, float *m, const float *t, int nbc, int c, int hwo) {
    int total = nbc * c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(ctx)) if (total > 1)
    for (int q = 0; q < total; q++) {
        int img = q / c, ch = q % c;
        memcpy(m + (size_t)ch * nbc * hwo + (size_t)img * hwo, t + (size_t)q * hwo, (size_t)hwo * sizeof(float));
    }
}

static void cpu_chunk_scatter(ops_ctx *ctx, float *t, const float *m, const float *b, int nbc, int c, int hwo) {
    int total = nbc * c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(ctx)) if (total > 1)
    for (int q = 0; q < total; q++) {
        int img = q / c, ch = q % c;
        const float *src = m + (size_t)ch * nbc * hwo + (size_t)img * hwo;
        float *dst = t + (size_t)q * hwo;
        float bv = b ? b[ch] : 0.0f;
#pragma omp simd
        for (int i = 0; i < hwo; i++) dst[i] = src[i] + bv;
    }
}

// y planes (C_out, hwo) of nimg images = b broadcast.
static void cpu_fill_bias(ops_ctx *ctx, float *y, const float *b, int nimg, int c, int hwo) {
    int total = nimg * c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(ctx)) if (total > 1)
    for (int q = 0; q < total; q++) {
        float *dst = y + (size_t)q * hwo;
        float bv = b[q % c];
        for (int i = 0; i < hwo; i++) dst[i] = bv;
    }
}

// --- the ops ----------------------------------------------------------------------------------

int cpu_conv2d_fwd(ops_ctx *ctx, const ops_conv_shape *s, float *y, const float *x, const float *w, const float *b) {
    cpu_conv_geo g;
    ERR_TRY(cpu_conv_geometry("conv2d_fwd", s, &g));
    size_t xs = (size_t)s->c_in * g.hw, ys = (size_t)s->c_out * g.hwo;
    if (g.pointwise) {
        if (b) cpu_fill_bias(ctx, y, b, s->n, s->c_out, g.hwo);
        cpu_blas_threads(ctx);
        for (int n = 0; n < s->n; n++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->c_out, g.hwo, s->c_in, 1.0f, w, s->c_in,
                        x + n * xs, g.hwo, b ? 1.0f : 0.0f, y + n * ys, g.hwo);
        return 0;
    }
    size_t cols = (size_t)g.nb * g.hwo;
    float *col = cpu_scratch(ctx, (size_t)g.kk * cols + (g.nb > 1 ? (size_t)s->c_out * cols : 0));
    if (!col) return err_prefix(ERR_NOMEM, "conv2d_fwd: ");
    float *tmp = col + (size_t)g.kk * cols;
    for (int n0 = 0; n0 < s->n; n0 += g.nb) {
        int nbc = s->n - n0 < g.nb ? s->n - n0 : g.nb;
        int nc = nbc * g.hwo;
        cpu_im2col(ctx, s, &g, x + n0 * xs, col, nbc);
        cpu_blas_threads(ctx);
        if (nbc == 1) {
            if (b) cpu_fill_bias(ctx, y + n0 * ys, b, 1, s->c_out, g.hwo);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->c_out, nc, g.kk, 1.0f, w, g.kk, col, nc,
                        b ? 1.0f : 0.0f, y + n0 * ys, nc);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->c_out, nc, g.kk, 1.0f, w, g.kk, col, nc, 0.0f,
                        tmp, nc);
            cpu_chunk_scatter(ctx, y + n0 * ys, tmp, b, nbc, s->c_out, g.hwo);
        }
    }
    return 0;
}

int cpu_conv2d_bwd_data(ops_ctx *ctx, const ops_conv_shape *s, float *dx, const float *dy, const float *w) {
    cpu_conv_geo g;
    ERR_TRY(cpu_conv_geometry("conv2d_bwd_data", s, &g));
    size_t xs = (size_t)s->c_in * g.hw, ys = (size_t)s->c_out * g.hwo;
    if (g.pointwise) {
        cpu_blas_threads(ctx);
        for (int n = 0; n < s->n; n++) // dx_n (C_in, HW) += w^T (C_in, C_out) dy_n (C_out, HW)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s->c_in, g.hwo, s->c_out, 1.0f, w, s->c_in,
                        dy + n * ys, g.hwo, 1.0f, dx + n * xs, g.hwo);
        return 0;
    }
    size_t cols = (size_t)g.nb * g.hwo;
    float *col = cpu_scratch(ctx, (size_t)g.kk * cols + (g.nb > 1 ? (size_t)s->c_out * cols : 0));
    if (!col) return err_prefix(ERR_NOMEM, "conv2d_bwd_data: ");
    float *tmp = col + (size_t)g.kk * cols;
    for (int n0 = 0; n0 < s->n; n0 += g.nb) {
        int nbc = s->n - n0 < g.nb ? s->n - n0 : g.nb;
        int nc = nbc * g.hwo;
        const float *dyc = dy + n0 * ys;
        if (nbc > 1) {
            cpu_chunk_gather(ctx, tmp, dyc, nbc, s->c_out, g.hwo);
            dyc = tmp;
        }
        cpu_blas_threads(ctx); // col (KK, nc) = w^T (KK, C_out) dyc (C_out, nc)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g.kk, nc, s->c_out, 1.0f, w, g.kk, dyc, nc, 0.0f, col, nc);
        cpu_col2im(ctx, s, &g, col, dx + n0 * xs, nbc);
    }
    return 0;
}

int cpu_conv2d_bwd_weight(ops_ctx *ctx, const ops_conv_shape *s, float *dw, float *db, const float *dy, const float *x) {
    cpu_conv_geo g;
    ERR_TRY(cpu_conv_geometry("conv2d_bwd_weight", s, &g));
    size_t xs = (size_t)s->c_in * g.hw, ys = (size_t)s->c_out * g.hwo;
    if (db) { // per output channel, images and positions in a fixed order, in double
#pragma omp parallel for schedule(static) num_threads(cpu_threads(ctx)) if (s->c_out > 1)
        for (int co = 0; co < s->c_out; co++) {
            double acc = 0.0;
            for (int n = 0; n < s->n; n++) acc += cpu_sum_f(dy + n * ys + (size_t)co * g.hwo, (size_t)g.hwo);
            db[co] += (float)acc;
        }
    }
    if (!dw) return 0;
    if (g.pointwise) {
        cpu_blas_threads(ctx);
        for (int n = 0; n < s->n; n++) // dw (C_out, C_in) += dy_n (C_out, HW) x_n^T (HW, C_in)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->c_out, s->c_in, g.hwo, 1.0f, dy + n * ys, g.hwo,
                        x + n * xs, g.hwo, 1.0f, dw, s->c_in);
        return 0;
    }
    size_t cols = (size_t)g.nb * g.hwo;
    float *col = cpu_scratch(ctx, (size_t)g.kk * cols + (g.nb > 1 ? (size_t)s->c_out * cols : 0));
    if (!col) return err_prefix(ERR_NOMEM, "conv2d_bwd_weight: ");
    float *tmp = col + (size_t)g.kk * cols;
    for (int n0 = 0; n0 < s->n; n0 += g.nb) {
        int nbc = s->n - n0 < g.nb ? s->n - n0 : g.nb;
        int nc = nbc * g.hwo;
        const float *dyc = dy + n0 * ys;
        if (nbc > 1) {
            cpu_chunk_gather(ctx, tmp, dyc, nbc, s->c_out, g.hwo);
            dyc = tmp;
        }
        cpu_im2col(ctx, s, &g, x + n0 * xs, col, nbc);
        cpu_blas_threads(ctx); // dw (C_out, KK) += dyc (C_out, nc) col^T (nc, KK)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->c_out, g.kk, nc, 1.0f, dyc, nc, col, nc, 1.0f, dw, g.kk);
    }
    return 0;
}
