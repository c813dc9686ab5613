// cpu_wino_f2: the transforms of Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, 2016)
// for cpu_winograd.c: 2.25x fewer multiplications than im2col + GEMM; the variant of most
// layers and of every weight gradient (F(4x4, 3x3), cpu_wino_f4.c, pays only on wide layers
// with small planes). Per 4x4 input tile d and 3x3 kernel g: Y (2x2) = A^T [ (G g G^T) .*
// (B^T d B) ] A.
// Tiles past an odd output edge are computed and dropped.
#include <omp.h>

#include "kernels/cpu/cpu_wino_impl.h"

#define CPU_WINO_STAGE 256 // tiles per staging block of the transforms
#define CPU_WINO_VEC 16    // tiles per SIMD vector (AVX-512 floats)

// row[ea + k] = src[2k], row[oa + k] = src[2k + 1] for the n floats of src: the even and odd
// columns of an input row into the two halves of a padded row. Profiled: a plain strided loop
// with a run-time parity was most of the input transform's time on 32-pixel rows.
static inline void f2_split(float *restrict row, int ea, int oa, const float *restrict src, int n) {
    float *ev = row + ea, *od = row + oa;
    int k = 0;
#ifdef __AVX2__
    for (; 2 * k + 16 <= n; k += 8) {
        __m256 lo = _mm256_loadu_ps(src + 2 * k), hi = _mm256_loadu_ps(src + 2 * k + 8);
        // per 128-bit lane: (lo0 lo2 hi0 hi2) / (lo1 lo3 hi1 hi3), then lanes into order
        __m256 e = _mm256_shuffle_ps(lo, hi, 0x88), o = _mm256_shuffle_ps(lo, hi, 0xDD);
        _mm256_storeu_ps(ev + k, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
        _mm256_storeu_ps(od + k, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8)));
    }
#endif
    for (; 2 * k + 1 < n; k++) {
        ev[k] = src[2 * k];
        od[k] = src[2 * k + 1];
    }
    if (2 * k < n) ev[k] = src[2 * k];
}

// U_e (C_out', C_in') for e = 4i + j (cpu_wino_kind.weights).
static void f2_weights(const float *w, float *u, int c_out, int c_in, int flip, int nt) {
    int co_n = flip ? c_in : c_out, ci_n = flip ? c_out : c_in;
    size_t plane = (size_t)co_n * ci_n;
    size_t sa, sb;
    int k[9];
    cpu_wino_kernel_at(flip, c_in, &sa, &sb, k);
    nt = co_n > 1 ? (plane * 16 >= CPU_PAR_WORK ? nt : 1) : 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int a = 0; a < co_n; a++) {
        float *d = u + (size_t)a * ci_n; // U_e (a, b) at d[e * plane + b]
        const float *wa = w + (size_t)a * sa;
#pragma omp simd
        for (int b = 0; b < ci_n; b++) {
            const float *g = wa + (size_t)b * sb;
            float g0 = g[k[0]], g1 = g[k[1]], g2 = g[k[2]], g3 = g[k[3]], g4 = g[k[4]], g5 = g[k[5]];
            float g6 = g[k[6]], g7 = g[k[7]], g8 = g[k[8]];
            // rows of G g: t0 = g row 0, t1 = (r0 + r1 + r2)/2, t2 = (r0 - r1 + r2)/2, t3 = row 2
            float t00 = g0, t01 = g1, t02 = g2;
            float t10 = 0.5f * (g0 + g3 + g6), t11 = 0.5f * (g1 + g4 + g7), t12 = 0.5f * (g2 + g5 + g8);
            float t20 = 0.5f * (g0 - g3 + g6), t21 = 0.5f * (g1 - g4 + g7), t22 = 0.5f * (g2 - g5 + g8);
            float t30 = g6, t31 = g7, t32 = g8;
#define CPU_WINO_GT(r, x0, x1, x2)                                                             \
    d[(size_t)(4 * (r)) * plane + b] = (x0);                                                   \
    d[(size_t)(4 * (r) + 1) * plane + b] = 0.5f * ((x0) + (x1) + (x2));                        \
    d[(size_t)(4 * (r) + 2) * plane + b] = 0.5f * ((x0) - (x1) + (x2));                        \
    d[(size_t)(4 * (r) + 3) * plane + b] = (x2);
            CPU_WINO_GT(0, t00, t01, t02)
            CPU_WINO_GT(1, t10, t11, t12)
            CPU_WINO_GT(2, t20, t21, t22)
            CPU_WINO_GT(3, t30, t31, t32)
#undef CPU_WINO_GT
        }
    }
}


// Column transform of one row u of B^T d: (u0 - u2, u1 + u2, u2 - u1, u1 - u3) into
// o[(4i + 0..3) * plane].
#define CPU_WINO_COLS(u0, u1, u2, u3, o, i, plane)                                             \
    do {                                                                                       \
        (o)[(size_t)(4 * (i)) * (plane)] = (u0) - (u2);                                        \
        (o)[(size_t)(4 * (i) + 1) * (plane)] = (u1) + (u2);                                    \
        (o)[(size_t)(4 * (i) + 2) * (plane)] = (u2) - (u1);                                    \
        (o)[(size_t)(4 * (i) + 3) * (plane)] = (u1) - (u3);                                    \
    } while (0)

// One tile of the input transform, written out (GCC vectorises this over tiles, not loops
// inside it): V_e = (B^T d B)_e for the 4x4 patch of padded rows p0..p3 at tile t, stored at
// o[e * plane]. Rows are deinterleaved (cpu_wino_f2 padded planes below): the patch's columns
// 2tx, 2tx+1, 2tx+2, 2tx+3 are p[t], p[h+t], p[s+t], p[h+s+t] (h: the odd half, s: the step
// of one column within a half).
#define CPU_WINO_IN_TILE(p0, p1, p2, p3, t, h, s, o, plane)                                    \
    do {                                                                                       \
        float a0 = (p0)[(t)], a1 = (p0)[(h) + (t)], a2 = (p0)[(s) + (t)], a3 = (p0)[(h) + (s) + (t)]; \
        float b0 = (p1)[(t)], b1 = (p1)[(h) + (t)], b2 = (p1)[(s) + (t)], b3 = (p1)[(h) + (s) + (t)]; \
        float c0 = (p2)[(t)], c1 = (p2)[(h) + (t)], c2 = (p2)[(s) + (t)], c3 = (p2)[(h) + (s) + (t)]; \
        float e0 = (p3)[(t)], e1 = (p3)[(h) + (t)], e2 = (p3)[(s) + (t)], e3 = (p3)[(h) + (s) + (t)]; \
        CPU_WINO_COLS(a0 - c0, a1 - c1, a2 - c2, a3 - c3, o, 0, plane);                        \
        CPU_WINO_COLS(b0 + c0, b1 + c1, b2 + c2, b3 + c3, o, 1, plane);                        \
        CPU_WINO_COLS(c0 - b0, c1 - b1, c2 - b2, c3 - b3, o, 2, plane);                        \
        CPU_WINO_COLS(b0 - e0, b1 - e1, b2 - e2, b3 - e3, o, 3, plane);                        \
    } while (0)

// One tile of the output-gradient transform (the adjoint of the output transform):
// dM_e = (A dY A^T)_e for the 2x2 block of padded rows p0, p1 at tile t (deinterleaved rows as
// above), stored at o[e * plane]. Rows of A dY: (a, b), (a+c, b+d), (a-c, b-d), (-c, -d).
#define CPU_WINO_DY_ROW(x0, x1, o, i, plane)                                                   \
    do {                                                                                       \
        (o)[(size_t)(4 * (i)) * (plane)] = (x0);                                               \
        (o)[(size_t)(4 * (i) + 1) * (plane)] = (x0) + (x1);                                    \
        (o)[(size_t)(4 * (i) + 2) * (plane)] = (x0) - (x1);                                    \
        (o)[(size_t)(4 * (i) + 3) * (plane)] = -(x1);                                          \
    } while (0)
#define CPU_WINO_DY_TILE(p0, p1, t, h, o, plane)                                              \
    do {                                                                                       \
        float a_ = (p0)[(t)], b_ = (p0)[(h) + (t)], c_ = (p1)[(t)], d_ = (p1)[(h) + (t)];      \
        CPU_WINO_DY_ROW(a_, b_, o, 0, plane);                                                  \
        CPU_WINO_DY_ROW(a_ + c_, b_ + d_, o, 1, plane);                                        \
        CPU_WINO_DY_ROW(a_ - c_, b_ - d_, o, 2, plane);                                        \
        CPU_WINO_DY_ROW(-c_, -d_, o, 3, plane);                                                \
    } while (0)

// Width and height of the zero-padded plane the input transform reads from: the tile grid's
// columns 0 .. 2*tw+1 and rows 0 .. 2*th+1, input pixel (r, c) at (r + pad_t, c + pad_l).
// A padded row holds its even columns, then its odd ones: padded column pc at
// (pc & 1) * half + pc / 2, times the group's gi images interleaved (cpu_wino_group): image i
// of the group at gi * (that) + i.
static int f2_pad_w(const cpu_wino_geo *g) {
    int need = 2 * g->tw + 2;
    if (need < g->pad_l + g->w) need = g->pad_l + g->w;
    return (need + 1) & ~1; // even: two halves of equal length
}
static int f2_pad_h(const cpu_wino_geo *g) {
    int need = 2 * g->th + 2;
    return need > g->pad_t + g->h ? need : g->pad_t + g->h;
}

// Floats of a padded plane of gi images, and CPU_WINO_VEC more that the whole vectors of tiles
// of the last tile row may read.
static size_t f2_pad_floats(const cpu_wino_geo *g, int gi) {
    return (size_t)f2_pad_h(g) * f2_pad_w(g) * gi + CPU_WINO_VEC;
}

// Channel planes xc[i * xstride] (i < gi) into the padded plane `pad` of gi interleaved images.
static void f2_fill(const cpu_wino_geo *g, float *pad, const float *xc, size_t xstride, int gi) {
    int wp = f2_pad_w(g), half = wp / 2, pl = g->pad_l;
    // column c lands at pc = c + pad_l: the even columns 2k go to ea[k], the odd ones to oa[k]
    int ea = (pl & 1 ? half : 0) + (pl >> 1), oa = (pl & 1 ? 0 : half) + ((pl + 1) >> 1);
    if (gi == 1) {
        for (int r = 0; r < g->h; r++) f2_split(pad + (size_t)(r + g->pad_t) * wp, ea, oa, xc + (size_t)r * g->w, g->w);
        return;
    }
    for (int i = 0; i < gi; i++) {
        const float *src = xc + (size_t)i * xstride;
        for (int r = 0; r < g->h; r++, src += g->w) {
            float *row = pad + (size_t)(r + g->pad_t) * wp * gi + i;
            int k = 0;
            for (; 2 * k + 1 < g->w; k++) {
                row[(size_t)(ea + k) * gi] = src[2 * k];
                row[(size_t)(oa + k) * gi] = src[2 * k + 1];
            }
            if (2 * k < g->w) row[(size_t)(ea + k) * gi] = src[2 * k];
        }
    }
}

// V_e (C_in, T) of the images x[0..nbc) (each (C_in, H, W)); ld = T of the chunk. Per group of
// images (cpu_wino_group) and channel, the planes are first copied into a zero-padded plane (so
// padding needs no tests), then every tile row runs in a SIMD loop over its tiles (tw * gi of
// them: the images of a group interleaved).
static void f2_input(const cpu_wino_geo *g, const float *x, float *v, int nbc, size_t ld, int nt, float *padbuf,
                           int dy) {
    int gi = cpu_wino_group(g, nbc), total = nbc / gi * g->c_in, wp = f2_pad_w(g);
    int h = wp / 2 * gi, row = wp * gi, len = g->tw * gi; // odd half, padded row, tiles per tile row
    int len_v = (len + CPU_WINO_VEC - 1) / CPU_WINO_VEC * CPU_WINO_VEC;
    size_t pad_n = f2_pad_floats(g, gi);
    size_t plane = (size_t)g->c_in * ld, hw = (size_t)g->h * g->w;
#pragma omp parallel num_threads(nt) if (nt > 1 && total > 1)
    {
        float *pad = padbuf + (size_t)omp_get_thread_num() * pad_n; // this thread's padded plane
        float stage[16 * CPU_WINO_STAGE];
        memset(pad, 0, pad_n * sizeof(float)); // borders stay zero; the inside is overwritten
#pragma omp for schedule(static)
        for (int q = 0; q < total; q++) {
            int grp = q / g->c_in, c = q % g->c_in;
            f2_fill(g, pad, x + ((size_t)grp * gi * g->c_in + c) * hw, (size_t)g->c_in * hw, gi);
            float *vc = v + (size_t)c * ld + (size_t)grp * gi * g->tpi;
            // tiles go to a staging block first (compile-time offsets between its 16 rows, so
            // the SIMD loop keeps its pointers in registers), then row by row to the 16 planes
            int fill = 0, t0 = 0;
            for (int ty = 0; ty < g->th; ty++) {
                const float *p0 = pad + (size_t)(2 * ty) * row, *p1 = p0 + row, *p2 = p1 + row, *p3 = p2 + row;
                if (len > CPU_WINO_STAGE) { // very wide rows: straight to the planes
                    float *dst = vc + (size_t)ty * len;
                    if (dy) {
#pragma omp simd
                        for (int t = 0; t < len; t++) CPU_WINO_DY_TILE(p0, p1, t, h, dst + t, plane);
                    } else {
#pragma omp simd
                        for (int t = 0; t < len; t++) CPU_WINO_IN_TILE(p0, p1, p2, p3, t, h, gi, dst + t, plane);
                    }
                    continue;
                }
                if (fill + len_v > CPU_WINO_STAGE) {
                    for (int e = 0; e < 16; e++)
                        cpu_wino_copy(vc + (size_t)e * plane + t0, stage + e * CPU_WINO_STAGE, fill);
                    t0 += fill;
                    fill = 0;
                }
                // whole vectors of tiles (the ones past len are dropped): a SIMD loop of fewer
                // tiles than its vector (28x28 planes: 14) ran all in GCC's scalar epilogue
                float *dst = stage + fill;
                for (int tv = 0; tv < len_v; tv += CPU_WINO_VEC) {
                    if (dy) {
#pragma omp simd
                        for (int t = tv; t < tv + CPU_WINO_VEC; t++)
                            CPU_WINO_DY_TILE(p0, p1, t, h, dst + t, CPU_WINO_STAGE);
                    } else if (gi == 1) { // a constant step: 8% faster on 28x28 planes
#pragma omp simd
                        for (int t = tv; t < tv + CPU_WINO_VEC; t++)
                            CPU_WINO_IN_TILE(p0, p1, p2, p3, t, h, 1, dst + t, CPU_WINO_STAGE);
                    } else {
#pragma omp simd
                        for (int t = tv; t < tv + CPU_WINO_VEC; t++)
                            CPU_WINO_IN_TILE(p0, p1, p2, p3, t, h, gi, dst + t, CPU_WINO_STAGE);
                    }
                }
                fill += len;
            }
            for (int e = 0; e < 16 && fill; e++)
                cpu_wino_copy(vc + (size_t)e * plane + t0, stage + e * CPU_WINO_STAGE, fill);
        }
    }
}

// Output transform of tile t: the four outputs (A^T m A) of M_e[t] (e at src[e * plane + t]).
#define CPU_WINO_OUT_TILE(src, t, plane, bias, o00, o01, o10, o11)                             \
    float o00, o01, o10, o11;                                                                  \
    do {                                                                                       \
        const float *m_ = (src) + (t);                                                         \
        size_t p_ = (plane);                                                                   \
        float s0 = m_[0] + m_[4 * p_] + m_[8 * p_], s1 = m_[p_] + m_[5 * p_] + m_[9 * p_];     \
        float s2 = m_[2 * p_] + m_[6 * p_] + m_[10 * p_], s3 = m_[3 * p_] + m_[7 * p_] + m_[11 * p_]; \
        float r0 = m_[4 * p_] - m_[8 * p_] - m_[12 * p_], r1 = m_[5 * p_] - m_[9 * p_] - m_[13 * p_]; \
        float r2 = m_[6 * p_] - m_[10 * p_] - m_[14 * p_], r3 = m_[7 * p_] - m_[11 * p_] - m_[15 * p_]; \
        o00 = s0 + s1 + s2 + (bias);                                                           \
        o01 = s1 - s2 - s3 + (bias);                                                           \
        o10 = r0 + r1 + r2 + (bias);                                                           \
        o11 = r1 - r2 - r3 + (bias);                                                           \
    } while (0)

// y[0..nbc) (C_out, HO, WO) = (or +=) A^T M A (+ b) from M_e (C_out, T) of a chunk whose nbc
// images are one interleaved group (cpu_wino_group): per channel and tile row, the tw * nbc
// tiles are copied into a staging block, transformed in a SIMD loop into four output rows,
// which are then scattered into the images.
static void f2_output_group(const cpu_wino_geo *g, const float *m, float *y, const float *b, int nbc, size_t ld,
                            int accumulate, int nt) {
    size_t plane = (size_t)g->c_out * ld, hwo = (size_t)g->ho * g->wo;
    int len = g->tw * nbc;
#pragma omp parallel num_threads(nt) if (nt > 1 && g->c_out > 1)
    {
        float stage[16 * CPU_WINO_STAGE], out[4 * CPU_WINO_STAGE];
#pragma omp for schedule(static)
        for (int co = 0; co < g->c_out; co++) {
            float bias = b ? b[co] : 0.0f, *yc = y + (size_t)co * hwo;
            for (int ty = 0; ty < g->th; ty++) {
                for (int k0 = 0; k0 < len; k0 += CPU_WINO_STAGE) { // blocks of the row's tiles
                    int n = len - k0 < CPU_WINO_STAGE ? len - k0 : CPU_WINO_STAGE;
                    const float *mc = m + (size_t)co * ld + (size_t)ty * len + k0;
                    for (int e = 0; e < 16; e++) cpu_wino_copy(stage + e * CPU_WINO_STAGE, mc + (size_t)e * plane, n);
#pragma omp simd
                    for (int t = 0; t < n; t++) {
                        CPU_WINO_OUT_TILE(stage, t, CPU_WINO_STAGE, bias, o00, o01, o10, o11);
                        out[t] = o00;
                        out[CPU_WINO_STAGE + t] = o01;
                        out[2 * CPU_WINO_STAGE + t] = o10;
                        out[3 * CPU_WINO_STAGE + t] = o11;
                    }
                    for (int t = 0; t < n; t++) { // tile k0 + t: column tx of image i
                        int tx = (k0 + t) / nbc, i = (k0 + t) % nbc;
                        float *yp = yc + (size_t)i * g->c_out * hwo + (size_t)(2 * ty) * g->wo + 2 * tx;
                        for (int r = 0; r < 2 && 2 * ty + r < g->ho; r++)
                            for (int k = 0; k < 2 && 2 * tx + k < g->wo; k++) {
                                float o = out[(2 * r + k) * CPU_WINO_STAGE + t];
                                yp[(size_t)r * g->wo + k] = accumulate ? yp[(size_t)r * g->wo + k] + o : o;
                            }
                    }
                }
            }
        }
    }
}

// y[0..nbc) (C_out, HO, WO) = (or +=) A^T M A (+ b) from M_e (C_out, T). Blocks of whole tile
// rows are first copied from the 16 planes into a staging block (compile-time offsets between
// its rows), then transformed in SIMD loops over the tiles of a row.
static void f2_output(const cpu_wino_geo *g, const float *m, float *y, const float *b, int nbc, size_t ld,
                            int accumulate, int nt) {
    if (cpu_wino_group(g, nbc) > 1) {
        f2_output_group(g, m, y, b, nbc, ld, accumulate, nt);
        return;
    }
    int total = nbc * g->c_out;
    size_t plane = (size_t)g->c_out * ld;
    int full_w = g->wo / 2; // tiles whose two columns are both inside
    int rows_per = g->tw <= CPU_WINO_STAGE ? CPU_WINO_STAGE / g->tw : 1;
#pragma omp parallel num_threads(nt) if (nt > 1 && total > 1)
    {
        float stage[16 * CPU_WINO_STAGE];
#pragma omp for schedule(static)
        for (int q = 0; q < total; q++) {
            int img = q / g->c_out, co = q % g->c_out;
            float *yc = y + (size_t)q * g->ho * g->wo;
            const float *mc = m + (size_t)co * ld + (size_t)img * g->tpi;
            float bias = b ? b[co] : 0.0f;
            // without accumulation y holds garbage (a reused buffer): zero it and add, never
            // `0 * y` (0 * NaN or Inf garbage is NaN: outputs that depended on memory contents)
            if (!accumulate) memset(yc, 0, (size_t)g->ho * g->wo * sizeof(float));
            for (int ty0 = 0; ty0 < g->th; ty0 += rows_per) {
                int nrows = g->th - ty0 < rows_per ? g->th - ty0 : rows_per;
                const float *blk = mc + (size_t)ty0 * g->tw; // tile (ty, tx) of e at blk[e*plane + (ty-ty0)*tw + tx]
                size_t bstride = plane;
                if (g->tw <= CPU_WINO_STAGE) {
                    for (int e = 0; e < 16; e++)
                        cpu_wino_copy(stage + e * CPU_WINO_STAGE, blk + (size_t)e * plane, nrows * g->tw);
                    blk = stage;
                    bstride = CPU_WINO_STAGE;
                }
                for (int r = 0; r < nrows; r++) {
                    int oh = 2 * (ty0 + r);
                    float *y0 = yc + (size_t)oh * g->wo, *y1 = y0 + g->wo;
                    const float *src = blk + (size_t)r * g->tw;
                    if (oh + 1 < g->ho && bstride == CPU_WINO_STAGE) {
#pragma omp simd
                        for (int tx = 0; tx < full_w; tx++) {
                            CPU_WINO_OUT_TILE(src, tx, CPU_WINO_STAGE, bias, o00, o01, o10, o11);
                            y0[2 * tx] += o00;
                            y0[2 * tx + 1] += o01;
                            y1[2 * tx] += o10;
                            y1[2 * tx + 1] += o11;
                        }
                    } else { // generic: wide rows, or the last, half tile row of an odd height
                        for (int tx = 0; tx < full_w; tx++) {
                            CPU_WINO_OUT_TILE(src, tx, bstride, bias, o00, o01, o10, o11);
                            y0[2 * tx] += o00;
                            y0[2 * tx + 1] += o01;
                            if (oh + 1 < g->ho) {
                                y1[2 * tx] += o10;
                                y1[2 * tx + 1] += o11;
                            }
                        }
                    }
                    for (int tx = full_w; tx < g->tw; tx++) { // the last, half tile of an odd width
                        CPU_WINO_OUT_TILE(src, tx, bstride, bias, o00, o01, o10, o11);
                        (void)o01, (void)o11;
                        y0[2 * tx] += o00;
                        if (oh + 1 < g->ho) y1[2 * tx] += o10;
                    }
                }
            }
        }
    }
}

// Images per chunk of `per_tile` floats per tile (CPU_WINO_CHUNK_BYTES above).
// The adjoint of the forward: dM_e = (A dY A^T)_e per output tile (zeros past an odd edge),
// dU_e (C_out, C_in) += dM_e (C_out, T) V_e^T (T, C_in) by 16 GEMMs, then dW += G^T dU G.

// dw (C_out, C_in, 3, 3) += G^T dU_e G from du_e (C_out, C_in).
static void f2_dweights(const float *du, float *dw, int c_out, int c_in, int nt) {
    size_t plane = (size_t)c_out * c_in;
    nt = c_out > 1 ? (plane * 16 >= CPU_PAR_WORK ? nt : 1) : 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int a = 0; a < c_out; a++) {
        for (int b = 0; b < c_in; b++) {
            float m[4][4];
            for (int e = 0; e < 16; e++) m[e / 4][e % 4] = du[(size_t)e * plane + (size_t)a * c_in + b];
            float q[3][4]; // G^T m
            for (int j = 0; j < 4; j++) {
                q[0][j] = m[0][j] + 0.5f * (m[1][j] + m[2][j]);
                q[1][j] = 0.5f * (m[1][j] - m[2][j]);
                q[2][j] = 0.5f * (m[1][j] + m[2][j]) + m[3][j];
            }
            float *o = dw + ((size_t)a * c_in + b) * 9;
            for (int i = 0; i < 3; i++) { // (G^T m) G
                o[i * 3 + 0] += q[i][0] + 0.5f * (q[i][1] + q[i][2]);
                o[i * 3 + 1] += 0.5f * (q[i][1] - q[i][2]);
                o[i * 3 + 2] += 0.5f * (q[i][1] + q[i][2]) + q[i][3];
            }
        }
    }
}


const cpu_wino_kind cpu_wino_f2 = {2, 16, "F(2x2,3x3)", f2_weights, f2_pad_floats, f2_input, f2_output, f2_dweights};
