// cpu_conv: 2-D convolution on the CPU: forward, backward-data and backward-weight/bias.
//
// Method: im2col + one GEMM (cpu_sgemm) per chunk of images. A chunk holds enough images that the
// GEMM has about CPU_CONV_COLS columns (one image when its output plane alone is that big), so
// the small planes deep in a UNet still make well-shaped GEMMs. 1x1, stride-1, pad-0
// convolutions skip im2col: the image itself is the column matrix (one sgemm per image).
//
// Threads, two ways, chosen per call:
// * outer: when there are at least as many chunks as threads, chunks run in one OpenMP loop
//   (static schedule), each thread with a single-threaded GEMM and its own slice of the
//   context's scratch buffer. One thread pool, no nested parallelism, no idle spinning pool.
// * inner: otherwise (small batches) chunks run one after another; im2col/col2im use OpenMP over
//   (image, channel) planes and the GEMM splits its columns over all the threads (the same bits).
// Either way every output element is written by one thread in a fixed order; the weight
// gradient of the outer way is summed per thread, then over threads in thread order, so results
// are deterministic for a fixed thread count. Scratch is grown on first use and then reused.
#include "kernels/cpu/cpu_internal.h"
#include "kernels/cpu/cpu_direct.h"
#include "kernels/cpu/cpu_sgemm.h"
#include "kernels/cpu/cpu_winograd.h"

#include <omp.h>

#include "common/err.h"

#define CPU_CONV_COLS 1024
#define CPU_CONV_OUTER_MAX ((size_t)512 << 20) // scratch bytes beyond which the outer way is not used

typedef struct {
    int ho, wo, hwo, hw; // output plane, input plane size
    int kk;              // c_in * kh * kw (rows of the column matrix)
    int pointwise;       // 1x1, stride 1, no padding
    int nb, nchunks;     // images per chunk, number of chunks
    int nt, outer;       // threads; 1 when chunks run in parallel (single-threaded GEMM each)
    size_t col_n, tmp_n; // floats per thread slice: column matrix, gathered dy / GEMM output
} cpu_conv_geo;

static int cpu_conv_geometry(ops_ctx *ctx, const char *op, const ops_conv_shape *s, cpu_conv_geo *g, size_t extra) {
    if (s->n <= 0 || s->c_in <= 0 || s->h <= 0 || s->w <= 0 || s->c_out <= 0 || s->kh <= 0 || s->kw <= 0 ||
        s->stride <= 0 || s->pad_t < 0 || s->pad_l < 0 || s->pad_b < 0 || s->pad_r < 0 ||
        s->h + s->pad_t + s->pad_b < s->kh || s->w + s->pad_l + s->pad_r < s->kw)
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
    g->nt = cpu_threads(ctx);
    int nb = g->pointwise || g->hwo >= CPU_CONV_COLS ? 1 : (CPU_CONV_COLS + g->hwo - 1) / g->hwo;
    g->outer = g->nt > 1 && s->n >= g->nt;
    if (g->outer && nb > s->n / g->nt) nb = s->n / g->nt; // at least one chunk per thread
    if (nb > s->n) nb = s->n;
    g->nb = nb;
    g->nchunks = (s->n + nb - 1) / nb;
    size_t cols = (size_t)nb * g->hwo;
    g->col_n = g->pointwise ? 0 : (size_t)g->kk * cols;
    g->tmp_n = nb > 1 ? (size_t)s->c_out * cols : 0;
    if (g->outer && (g->col_n + g->tmp_n + extra) * sizeof(float) * g->nt > CPU_CONV_OUTER_MAX) {
        g->outer = 0; // too much scratch for a slice per thread: recompute as one big chunk stream
        nb = g->pointwise || g->hwo >= CPU_CONV_COLS ? 1 : (CPU_CONV_COLS + g->hwo - 1) / g->hwo;
        g->nb = nb < s->n ? nb : s->n;
        g->nchunks = (s->n + g->nb - 1) / g->nb;
        cols = (size_t)g->nb * g->hwo;
        g->col_n = g->pointwise ? 0 : (size_t)g->kk * cols;
        g->tmp_n = g->nb > 1 ? (size_t)s->c_out * cols : 0;
    }
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

// col (KK, nbc*hwo) from images x[0..nbc) (each (C_in, H, W)), with nt OpenMP threads.
static void cpu_im2col(const ops_conv_shape *s, const cpu_conv_geo *g, const float *x, float *col, int nbc, int nt) {
    size_t ld = (size_t)nbc * g->hwo;
    int total = nbc * s->c_in;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && total > 1)
    for (int t = 0; t < total; t++) {
        int img = t / s->c_in, c = t % s->c_in;
        cpu_im2col_channel(s, g, x + ((size_t)img * s->c_in + c) * g->hw, col, ld, (size_t)img * g->hwo, c);
    }
}

// dx[0..nbc) += col2im(col): each (image, input channel) plane is one task, its adds in a fixed order.
static void cpu_col2im(const ops_conv_shape *s, const cpu_conv_geo *g, const float *col, float *dx, int nbc, int nt) {
    size_t ld = (size_t)nbc * g->hwo;
    int total = nbc * s->c_in;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && total > 1)
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

// m (C, nbc*hwo) = planes t (nbc, C, hwo) side by side
static void cpu_chunk_gather(float *m, const float *t, int nbc, int c, int hwo, int nt) {
    int total = nbc * c;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && total > 1)
    for (int q = 0; q < total; q++) {
        int img = q / c, ch = q % c;
        memcpy(m + (size_t)ch * nbc * hwo + (size_t)img * hwo, t + (size_t)q * hwo, (size_t)hwo * sizeof(float));
    }
}

// planes t (nbc, C, hwo) = m (C, nbc*hwo) + b (C) (b may be NULL)
static void cpu_chunk_scatter(float *t, const float *m, const float *b, int nbc, int c, int hwo, int nt) {
    int total = nbc * c;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && total > 1)
    for (int q = 0; q < total; q++) {
        int img = q / c, ch = q % c;
        const float *src = m + (size_t)ch * nbc * hwo + (size_t)img * hwo;
        float *dst = t + (size_t)q * hwo;
        float bv = b ? b[ch] : 0.0f;
#pragma omp simd
        for (int i = 0; i < hwo; i++) dst[i] = src[i] + bv;
    }
}

// planes y (C, hwo) of one image = b broadcast
static void cpu_fill_bias(float *y, const float *b, int c, int hwo, int nt) {
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && c > 1)
    for (int q = 0; q < c; q++) {
        float *dst = y + (size_t)q * hwo;
        float bv = b[q];
        for (int i = 0; i < hwo; i++) dst[i] = bv;
    }
}

// --- one chunk of images ----------------------------------------------------------------------------

// y of images [n0, n0+nbc) = conv(x) + b; `col`, `tmp` are this thread's slices; nt threads for OpenMP.
static void cpu_conv_fwd_chunk(const ops_conv_shape *s, const cpu_conv_geo *g, float *y, const float *x,
                               const float *w, const float *b, int n0, int nbc, float *col, float *tmp, int nt) {
    size_t xs = (size_t)s->c_in * g->hw, ys = (size_t)s->c_out * g->hwo;
    int nc = nbc * g->hwo;
    const float *bm = g->pointwise ? x + n0 * xs : col; // B of the GEMM: (KK, nc)
    if (!g->pointwise) cpu_im2col(s, g, x + n0 * xs, col, nbc, nt);
    if (nbc == 1) {
        if (b) cpu_fill_bias(y + n0 * ys, b, s->c_out, g->hwo, nt);
        cpu_sgemm_mt(nt, 0, 0, s->c_out, nc, g->kk, 1.0f, w, g->kk, bm, nc, b ? 1.0f : 0.0f, y + n0 * ys, nc);
    } else {
        cpu_sgemm_mt(nt, 0, 0, s->c_out, nc, g->kk, 1.0f, w, g->kk, bm, nc, 0.0f, tmp, nc);
        cpu_chunk_scatter(y + n0 * ys, tmp, b, nbc, s->c_out, g->hwo, nt);
    }
}

// dx of images [n0, n0+nbc) += conv_transpose(dy, w)
static void cpu_conv_bwd_data_chunk(const ops_conv_shape *s, const cpu_conv_geo *g, float *dx, const float *dy,
                                    const float *w, int n0, int nbc, float *col, float *tmp, int nt) {
    size_t xs = (size_t)s->c_in * g->hw, ys = (size_t)s->c_out * g->hwo;
    int nc = nbc * g->hwo;
    if (g->pointwise) { // dx_n (C_in, HW) += w^T (C_in, C_out) dy_n (C_out, HW)
        cpu_sgemm_mt(nt, 1, 0, s->c_in, nc, s->c_out, 1.0f, w, s->c_in, dy + n0 * ys, nc, 1.0f, dx + n0 * xs, nc);
        return;
    }
    const float *dyc = dy + n0 * ys;
    if (nbc > 1) {
        cpu_chunk_gather(tmp, dyc, nbc, s->c_out, g->hwo, nt);
        dyc = tmp;
    }
    // col (KK, nc) = w^T (KK, C_out) dyc (C_out, nc)
    cpu_sgemm_mt(nt, 1, 0, g->kk, nc, s->c_out, 1.0f, w, g->kk, dyc, nc, 0.0f, col, nc);
    cpu_col2im(s, g, col, dx + n0 * xs, nbc, nt);
}

// dw (C_out, KK) += dy (C_out, nc) col^T (nc, KK) over images [n0, n0+nbc)
static void cpu_conv_bwd_weight_chunk(const ops_conv_shape *s, const cpu_conv_geo *g, float *dw, const float *dy,
                                      const float *x, int n0, int nbc, float *col, float *tmp, int nt) {
    size_t xs = (size_t)s->c_in * g->hw, ys = (size_t)s->c_out * g->hwo;
    int nc = nbc * g->hwo;
    const float *dyc = dy + n0 * ys, *bm = x + n0 * xs;
    if (nbc > 1) {
        cpu_chunk_gather(tmp, dyc, nbc, s->c_out, g->hwo, nt);
        dyc = tmp;
    }
    if (!g->pointwise) {
        cpu_im2col(s, g, x + n0 * xs, col, nbc, nt);
        bm = col;
    }
    cpu_sgemm_mt(nt, 0, 1, s->c_out, g->kk, nc, 1.0f, dyc, nc, bm, nc, 1.0f, dw, g->kk);
}

// --- the ops ----------------------------------------------------------------------------------

// Chunk loop shared by the three ops: `body(chunk, slice)` runs each chunk, in parallel (outer)
// with thread-private slices and single-threaded GEMMs, or in order (inner) with threaded GEMMs.
#define CPU_CONV_CHUNKS(ctx, s, g, buf, slice_n, BODY)                                           \
    do {                                                                                         \
        if ((g).outer) {                                                                         \
            _Pragma("omp parallel for schedule(static) num_threads((g).nt)")                     \
            for (int ck = 0; ck < (g).nchunks; ck++) {                                           \
                float *sl_ = (buf) + (size_t)omp_get_thread_num() * (slice_n);                   \
                int n0 = ck * (g).nb, nbc = (s)->n - n0 < (g).nb ? (s)->n - n0 : (g).nb, nt_ = 1; \
                BODY;                                                                            \
            }                                                                                    \
        } else {                                                                                 \
            for (int ck = 0; ck < (g).nchunks; ck++) {                                           \
                float *sl_ = (buf);                                                              \
                int n0 = ck * (g).nb, nbc = (s)->n - n0 < (g).nb ? (s)->n - n0 : (g).nb, nt_ = (g).nt; \
                BODY;                                                                            \
            }                                                                                    \
        }                                                                                        \
    } while (0)

int cpu_conv2d_fwd(ops_ctx *ctx, const ops_conv_shape *s, float *y, const float *x, const float *w, const float *b) {
    cpu_conv_geo g;
    ERR_TRY(cpu_conv_geometry(ctx, "conv2d_fwd", s, &g, 0));
    if (cpu_direct_usable(s, 0)) return cpu_direct_conv(ctx, s, y, x, w, b, 0);
    if (cpu_winograd_usable(s, 0)) return cpu_winograd_conv(ctx, s, y, x, w, b, 0);
    size_t slice = g.col_n + g.tmp_n;
    float *buf = cpu_scratch(ctx, (slice ? slice : 1) * (g.outer ? g.nt : 1));
    if (!buf) return err_prefix(ERR_NOMEM, "conv2d_fwd: ");
    CPU_CONV_CHUNKS(ctx, s, g, buf, slice, cpu_conv_fwd_chunk(s, &g, y, x, w, b, n0, nbc, sl_, sl_ + g.col_n, nt_));
    return 0;
}

int cpu_conv2d_bwd_data(ops_ctx *ctx, const ops_conv_shape *s, float *dx, const float *dy, const float *w) {
    cpu_conv_geo g;
    ERR_TRY(cpu_conv_geometry(ctx, "conv2d_bwd_data", s, &g, 0));
    if (cpu_direct_usable(s, 1)) return cpu_direct_conv(ctx, s, dx, dy, w, NULL, 1);
    if (cpu_winograd_usable(s, 1)) return cpu_winograd_conv(ctx, s, dx, dy, w, NULL, 1);
    size_t slice = g.col_n + g.tmp_n;
    float *buf = cpu_scratch(ctx, (slice ? slice : 1) * (g.outer ? g.nt : 1));
    if (!buf) return err_prefix(ERR_NOMEM, "conv2d_bwd_data: ");
    CPU_CONV_CHUNKS(ctx, s, g, buf, slice, cpu_conv_bwd_data_chunk(s, &g, dx, dy, w, n0, nbc, sl_, sl_ + g.col_n, nt_));
    return 0;
}

int cpu_conv2d_bwd_weight(ops_ctx *ctx, const ops_conv_shape *s, float *dw, float *db, const float *dy, const float *x) {
    cpu_conv_geo g;
    size_t nw = (size_t)s->c_out * s->c_in * s->kh * s->kw;
    ERR_TRY(cpu_conv_geometry(ctx, "conv2d_bwd_weight", s, &g, nw));
    size_t ys = (size_t)s->c_out * g.hwo;
    if (db) { // per output channel, images in order, in double
        int bt = s->c_out > 1 ? cpu_par_threads(ctx, (size_t)s->n * ys) : 1;
#pragma omp parallel for schedule(static) num_threads(bt) if (bt > 1)
        for (int co = 0; co < s->c_out; co++) {
            double acc = 0.0;
            for (int n = 0; n < s->n; n++) acc += cpu_sum_f(dy + n * ys + (size_t)co * g.hwo, (size_t)g.hwo);
            db[co] += (float)acc;
        }
    }
    if (!dw) return 0;
    if (cpu_winograd_usable(s, 0)) return cpu_winograd_bwd_weight(ctx, s, dw, dy, x);
    // outer: each thread accumulates into its own zeroed dw slice, summed in thread order below
    size_t slice = g.col_n + g.tmp_n + (g.outer ? nw : 0);
    float *buf = cpu_scratch(ctx, (slice ? slice : 1) * (g.outer ? g.nt : 1));
    if (!buf) return err_prefix(ERR_NOMEM, "conv2d_bwd_weight: ");
    if (g.outer) {
        for (int t = 0; t < g.nt; t++) memset(buf + (size_t)t * slice + g.col_n + g.tmp_n, 0, nw * sizeof(float));
    }
    CPU_CONV_CHUNKS(ctx, s, g, buf, slice,
                    cpu_conv_bwd_weight_chunk(s, &g, g.outer ? sl_ + g.col_n + g.tmp_n : dw, dy, x, n0, nbc, sl_,
                                              sl_ + g.col_n, nt_));
    if (g.outer) {
        const float *part = buf + g.col_n + g.tmp_n;
        int nt = g.nt, st = cpu_par_threads(ctx, nw * (size_t)nt);
#pragma omp parallel for simd schedule(static) num_threads(st) if(parallel: st > 1)
        for (size_t i = 0; i < nw; i++) {
            float acc = dw[i];
            for (int t = 0; t < nt; t++) acc += part[(size_t)t * slice + i];
            dw[i] = acc;
        }
    }
    return 0;
}
