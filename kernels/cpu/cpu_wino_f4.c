// cpu_wino_f4: the transforms of Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, 2016,
// points 0, 1, -1, 2, -2, infinity) for cpu_winograd.c: 36 products per 4x4 output tile, 4x
// fewer multiplications than im2col + GEMM (F(2x2, 3x3): 2.25x), and 2.25 transformed floats
// per output pixel to write and read (F(2x2): 4). Per 6x6 input tile d and 3x3 kernel g:
// Y (4x4) = A^T [ (G g G^T) .* (B^T d B) ] A, e = 6 * row + column. Tiles past an output edge
// are computed and dropped.
//
// Rounding: a few times F(2x2)'s (fp32: relative errors of a few 1e-6 against a double direct
// convolution at 64 channels, up to ~2e-5 in a tensor's worst element); weights and weight
// gradients are transformed in double.
//
// Layout of the work: a transform runs in a SIMD loop over tiles, and the planes this variant
// is picked for are small (8x8: 4 tiles), so the raw 6x6 (dy: 4x4) tiles of all the chunk's
// images of one channel (neighbours in V) are first gathered into a staging block (row j of the
// block holds tile element j of each tile), which is then transformed as one. The output side
// transforms a block of M into 16 output rows and interleaves them into the images' rows.
//
// Where it is used (cpu_winograd.c): only where it measured faster than F(2x2), forward and
// backward-data passes of wide layers on small planes. Its transforms cost about twice F(2x2)'s
// per output (perf, 128 channels 32x32: input transform 39% against F(2x2)'s 19% of a call),
// which the GEMMs' 1.8x fewer FLOPs repay only where the GEMMs dominate.
#include <omp.h>

#include "kernels/cpu/cpu_wino_impl.h"

#define F4_STAGE 128 // tiles per staging block: 36 x 128 floats = 18 KiB, in L1

// --- the 1D transforms (rows, then columns) ----------------------------------------------------

// B^T (6x6) of d0..d5 into r0..r5 (declared).
#define F4_BT(r, d0, d1, d2, d3, d4, d5)                                                       \
    float r##0 = 4.0f * (d0) - 5.0f * (d2) + (d4);                                             \
    float r##1 = ((d3) + (d4)) - 4.0f * ((d1) + (d2));                                         \
    float r##2 = ((d4) - (d3)) + 4.0f * ((d1) - (d2));                                         \
    float r##3 = ((d4) - (d2)) + 2.0f * ((d3) - (d1));                                         \
    float r##4 = ((d4) - (d2)) - 2.0f * ((d3) - (d1));                                         \
    float r##5 = 4.0f * (d1) - 5.0f * (d3) + (d5);

// A^T (4x6) of m0..m5 into r0..r3 (declared).
#define F4_AT(r, m0, m1, m2, m3, m4, m5)                                                       \
    float r##0 = ((m0) + ((m1) + (m2))) + ((m3) + (m4));                                       \
    float r##1 = ((m1) - (m2)) + 2.0f * ((m3) - (m4));                                         \
    float r##2 = ((m1) + (m2)) + 4.0f * ((m3) + (m4));                                         \
    float r##3 = (((m1) - (m2)) + 8.0f * ((m3) - (m4))) + (m5);

// A (6x4) of y0..y3 into r0..r5 (declared): the adjoint of F4_AT, for output gradients.
#define F4_A(r, y0, y1, y2, y3)                                                                \
    float r##0 = (y0);                                                                         \
    float r##1 = ((y0) + (y2)) + ((y1) + (y3));                                                \
    float r##2 = ((y0) + (y2)) - ((y1) + (y3));                                                \
    float r##3 = ((y0) + 4.0f * (y2)) + 2.0f * ((y1) + 4.0f * (y3));                           \
    float r##4 = ((y0) + 4.0f * (y2)) - 2.0f * ((y1) + 4.0f * (y3));                           \
    float r##5 = (y3);

// G (6x3) of g0..g2 into r0..r5 (declared), in double: u = G g with the kernel's 1/6 and 1/24
// rounded once, at the end.
#define F4_G(r, g0, g1, g2)                                                                    \
    double r##0 = (g0) / 4, r##1 = -((g0) + (g1) + (g2)) / 6, r##2 = -((g0) - (g1) + (g2)) / 6; \
    double r##3 = (g0) / 24 + (g1) / 12 + (g2) / 6, r##4 = (g0) / 24 - (g1) / 12 + (g2) / 6;     \
    double r##5 = (g2);

// G^T (3x6) of u0..u5 into r0..r2 (declared), in double: the adjoint of F4_G.
#define F4_GT(r, u0, u1, u2, u3, u4, u5)                                                       \
    double r##0 = (u0) / 4 - ((u1) + (u2)) / 6 + ((u3) + (u4)) / 24;                           \
    double r##1 = ((u2) - (u1)) / 6 + ((u3) - (u4)) / 12;                                      \
    double r##2 = ((u3) + (u4) - (u1) - (u2)) / 6 + (u5);

// --- weights -----------------------------------------------------------------------------------

// U_e (C_out', C_in') for e = 6i + j (cpu_wino_kind.weights), in SIMD loops over b.
static void f4_weights(const float *w, float *u, int c_out, int c_in, int flip, int nt) {
    int co_n = flip ? c_in : c_out, ci_n = flip ? c_out : c_in;
    size_t plane = (size_t)co_n * ci_n;
    size_t sa, sb;
    int k[9];
    cpu_wino_kernel_at(flip, c_in, &sa, &sb, k);
    nt = co_n > 1 ? (plane * 36 >= CPU_PAR_WORK ? nt : 1) : 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int a = 0; a < co_n; a++) {
        float *d = u + (size_t)a * ci_n; // U_e (a, b) at d[e * plane + b]
        const float *wa = w + (size_t)a * sa;
#pragma omp simd
        for (int b = 0; b < ci_n; b++) {
            const float *g = wa + (size_t)b * sb;
            // G g: the columns of the kernel
            F4_G(p, (double)g[k[0]], (double)g[k[3]], (double)g[k[6]])
            F4_G(q, (double)g[k[1]], (double)g[k[4]], (double)g[k[7]])
            F4_G(r, (double)g[k[2]], (double)g[k[5]], (double)g[k[8]])
#define ROW(i)                                                                                 \
    {                                                                                          \
        F4_G(o, p##i, q##i, r##i)                                                              \
        d[(size_t)(6 * (i)) * plane + b] = (float)o0;                                          \
        d[(size_t)(6 * (i) + 1) * plane + b] = (float)o1;                                      \
        d[(size_t)(6 * (i) + 2) * plane + b] = (float)o2;                                      \
        d[(size_t)(6 * (i) + 3) * plane + b] = (float)o3;                                      \
        d[(size_t)(6 * (i) + 4) * plane + b] = (float)o4;                                      \
        d[(size_t)(6 * (i) + 5) * plane + b] = (float)o5;                                      \
    }
            ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
        }
    }
}

// dw (C_out, C_in, 3, 3) += G^T dU_e G (cpu_wino_kind.dweights), in SIMD loops over b.
static void f4_dweights(const float *du, float *dw, int c_out, int c_in, int nt) {
    size_t plane = (size_t)c_out * c_in;
    nt = c_out > 1 ? (plane * 36 >= CPU_PAR_WORK ? nt : 1) : 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int a = 0; a < c_out; a++) {
        const float *src = du + (size_t)a * c_in;
        float *da = dw + (size_t)a * c_in * 9;
#pragma omp simd
        for (int b = 0; b < c_in; b++) {
#define U(e) (double)src[(size_t)(e) * plane + b]
            // G^T dU: the columns
            F4_GT(c0_, U(0), U(6), U(12), U(18), U(24), U(30))
            F4_GT(c1_, U(1), U(7), U(13), U(19), U(25), U(31))
            F4_GT(c2_, U(2), U(8), U(14), U(20), U(26), U(32))
            F4_GT(c3_, U(3), U(9), U(15), U(21), U(27), U(33))
            F4_GT(c4_, U(4), U(10), U(16), U(22), U(28), U(34))
            F4_GT(c5_, U(5), U(11), U(17), U(23), U(29), U(35))
#undef U
            float *o = da + (size_t)b * 9;
#define ROW(i)                                                                                 \
    {                                                                                          \
        F4_GT(r, c0_##i, c1_##i, c2_##i, c3_##i, c4_##i, c5_##i)                               \
        o[3 * (i)] += (float)r0;                                                               \
        o[3 * (i) + 1] += (float)r1;                                                           \
        o[3 * (i) + 2] += (float)r2;                                                           \
    }
            ROW(0) ROW(1) ROW(2)
#undef ROW
        }
    }
}

// --- memory ------------------------------------------------------------------------------------
// The transforms walk the planes of one channel image after image, a stride of C planes apart
// (64 KiB for 16 channels of 32x32), where the hardware prefetchers, which stay within a page,
// lose the stream: perf put 45% of the input transform on the loads of x (4x F(2x2)'s, which
// walks the planes in memory order). So each plane is fetched `ahead` images early.

// Images to fetch ahead for planes of n floats: about 8 KiB of planes in flight, 1 to 8 images.
static int f4_ahead(size_t n) {
    size_t a = 16384 / (n ? n : 1);
    return a < 1 ? 1 : a > 8 ? 8 : (int)a;
}

// Prefetches the n floats at p (write: for a store).
static inline void f4_prefetch(const float *p, size_t n, int write) {
    for (size_t i = 0; i < n; i += 16) {
        if (write)
            __builtin_prefetch(p + i, 1, 3);
        else
            __builtin_prefetch(p + i, 0, 3);
    }
}

// --- input side --------------------------------------------------------------------------------

// A padded plane holds each row as four phases of q = wp / 4 floats: padded column pc at
// (pc & 3) * q + pc / 4, so that column 4 tx + k of every tile (k = 0..5) is a contiguous run
// over tx: phase k & 3 from index tx + k / 4. Input pixel (r, c) is at padded (r + pad_t,
// c + pad_l); the rest stays zero. A group of gi images (cpu_wino_group) is interleaved: image
// i's column at gi * (that) + i, so that the runs go over (tx, i).
static int f4_pad_w(const cpu_wino_geo *g) {
    int need = 4 * g->tw + 4; // q >= tw + 1: column 4 tw + 1 is phase 1 at index tw
    if (need < g->pad_l + g->w) need = g->pad_l + g->w;
    return (need + 3) & ~3;
}
static int f4_pad_h(const cpu_wino_geo *g) {
    int need = 4 * g->th + 2;
    return need > g->pad_t + g->h ? need : g->pad_t + g->h;
}
static size_t f4_pad_floats(const cpu_wino_geo *g, int gi) {
    return (size_t)f4_pad_h(g) * f4_pad_w(g) * gi;
}

// row[off[c & 3] + c / 4] = src[c] for the n floats of src: one input row into the phases of a
// padded row (off: where source phase p starts, the padding's shift included).
static void f4_split(float *restrict row, const int off[4], const float *restrict src, int n) {
    int c0 = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
    const __m512i i0 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i one = _mm512_set1_epi32(1);
    for (; c0 + 32 <= n; c0 += 32) { // 32 source floats: 8 of each phase, unmasked
        __m512 a = _mm512_loadu_ps(src + c0), b = _mm512_loadu_ps(src + c0 + 16);
        __m512i idx = i0;
        for (int p = 0; p < 4; p++, idx = _mm512_add_epi32(idx, one))
            _mm256_storeu_ps(row + off[p] + c0 / 4, _mm512_castps512_ps256(_mm512_permutex2var_ps(a, idx, b)));
    }
    for (; c0 < n; c0 += 32) { // the tail: fewer than 8 of each phase, through masks
        int nb = n - c0;
        __mmask16 lo = (__mmask16)(nb >= 16 ? 0xFFFF : (1u << nb) - 1);
        __mmask16 hi = (__mmask16)(nb <= 16 ? 0 : nb >= 32 ? 0xFFFF : (1u << (nb - 16)) - 1);
        __m512 a = _mm512_maskz_loadu_ps(lo, src + c0), b = _mm512_maskz_loadu_ps(hi, src + c0 + 16);
        __m512i idx = i0;
        for (int p = 0; p < 4; p++, idx = _mm512_add_epi32(idx, one)) {
            int cnt = nb > p ? (nb - p + 3) / 4 : 0; // source floats c0 + 4k + p < n
            __m256 v = _mm512_castps512_ps256(_mm512_permutex2var_ps(a, idx, b));
            _mm256_mask_storeu_ps(row + off[p] + c0 / 4, (__mmask8)((1u << cnt) - 1), v);
        }
    }
#endif
    for (int c = c0; c < n; c++) row[off[c & 3] + c / 4] = src[c];
}

// The transform of one tile, its element (i, k) read as L(i, k), into V_e at o[e * plane]
// (B^T d B; dy: A dY A^T of a 4x4 block).
#define F4_IN_TILE(L, o, plane)                                                                \
    do {                                                                                       \
        F4_BT(a, L(0, 0), L(0, 1), L(0, 2), L(0, 3), L(0, 4), L(0, 5))                         \
        F4_BT(b, L(1, 0), L(1, 1), L(1, 2), L(1, 3), L(1, 4), L(1, 5))                         \
        F4_BT(c, L(2, 0), L(2, 1), L(2, 2), L(2, 3), L(2, 4), L(2, 5))                         \
        F4_BT(d, L(3, 0), L(3, 1), L(3, 2), L(3, 3), L(3, 4), L(3, 5))                         \
        F4_BT(f, L(4, 0), L(4, 1), L(4, 2), L(4, 3), L(4, 4), L(4, 5))                         \
        F4_BT(h, L(5, 0), L(5, 1), L(5, 2), L(5, 3), L(5, 4), L(5, 5))                         \
        F4_IN_COL(F4_BT, o, plane, 0) F4_IN_COL(F4_BT, o, plane, 1) F4_IN_COL(F4_BT, o, plane, 2) \
        F4_IN_COL(F4_BT, o, plane, 3) F4_IN_COL(F4_BT, o, plane, 4) F4_IN_COL(F4_BT, o, plane, 5) \
    } while (0)
#define F4_DY_TILE(L, o, plane)                                                                \
    do {                                                                                       \
        F4_A(a, L(0, 0), L(0, 1), L(0, 2), L(0, 3))                                            \
        F4_A(b, L(1, 0), L(1, 1), L(1, 2), L(1, 3))                                            \
        F4_A(c, L(2, 0), L(2, 1), L(2, 2), L(2, 3))                                            \
        F4_A(d, L(3, 0), L(3, 1), L(3, 2), L(3, 3))                                            \
        F4_IN_COL(F4_A4, o, plane, 0) F4_IN_COL(F4_A4, o, plane, 1) F4_IN_COL(F4_A4, o, plane, 2) \
        F4_IN_COL(F4_A4, o, plane, 3) F4_IN_COL(F4_A4, o, plane, 4) F4_IN_COL(F4_A4, o, plane, 5) \
    } while (0)
// Column j of the row-transformed tile (a..h, j) through T, into V_e for e = 6 * (0..5) + j.
#define F4_A4(r, x0, x1, x2, x3, x4_, x5_) F4_A(r, x0, x1, x2, x3)
#define F4_IN_COL(T, o, plane, j)                                                              \
    {                                                                                          \
        T(r, a##j, b##j, c##j, d##j, f##j, h##j)                                               \
        (o)[(size_t)(j) * (plane)] = r0;                                                       \
        (o)[(size_t)(6 + (j)) * (plane)] = r1;                                                 \
        (o)[(size_t)(12 + (j)) * (plane)] = r2;                                                \
        (o)[(size_t)(18 + (j)) * (plane)] = r3;                                                \
        (o)[(size_t)(24 + (j)) * (plane)] = r4;                                                \
        (o)[(size_t)(30 + (j)) * (plane)] = r5;                                                \
    }

// The block's n tiles: raw (36 or 16 rows of F4_STAGE) into V_e at v[e * plane + t].
static void f4_flush(const float *raw, float *v, size_t plane, int n, int dy) {
    if (dy) {
#pragma omp simd
        for (int t = 0; t < n; t++) {
#define L(i, k) raw[(4 * (i) + (k)) * F4_STAGE + t]
            F4_DY_TILE(L, v + t, plane);
#undef L
        }
    } else {
#pragma omp simd
        for (int t = 0; t < n; t++) {
#define L(i, k) raw[(6 * (i) + (k)) * F4_STAGE + t]
            F4_IN_TILE(L, v + t, plane);
#undef L
        }
    }
}

// Channel planes xc[i * xstride] (i < gi) into the padded plane `pad` of gi interleaved images
// (off: where each source column phase starts, f4_split). Within a group the next images'
// planes are fetched `ahead` (they lie a stride of C planes apart, where the hardware
// prefetchers lose the stream).
static void f4_fill(const cpu_wino_geo *g, float *pad, const int off[4], const float *xc, size_t xstride, int gi,
                    int ahead) {
    int wp = f4_pad_w(g);
    size_t hw = (size_t)g->h * g->w;
    if (gi == 1) {
        for (int r = 0; r < g->h; r++) f4_split(pad + (size_t)(r + g->pad_t) * wp, off, xc + (size_t)r * g->w, g->w);
        return;
    }
    for (int i = 0; i < gi; i++) {
        const float *src = xc + (size_t)i * xstride;
        if (i + ahead < gi) f4_prefetch(src + (size_t)ahead * xstride, hw, 0);
        for (int r = 0; r < g->h; r++, src += g->w) {
            float *row = pad + (size_t)(r + g->pad_t) * wp * gi + i;
            for (int c = 0; c < g->w; c++) row[(size_t)(off[c & 3] + c / 4) * gi] = src[c];
        }
    }
}

// cpu_wino_kind.input: per group of images (cpu_wino_group) and channel, the planes filled into
// the padded plane, its raw tiles gathered into the staging block, which is transformed into V
// whenever it is full and at the end.
static void f4_input(const cpu_wino_geo *g, const float *x, float *v, int nbc, size_t ld, int nt, float *padbuf,
                     int dy) {
    int gi = cpu_wino_group(g, nbc), wp = f4_pad_w(g), hp = f4_pad_h(g), q = wp / 4, span = dy ? 4 : 6;
    int row = wp * gi, len = g->tw * gi, units = nbc / gi * g->c_in; // padded row; tiles per tile row
    size_t plane = (size_t)g->c_in * ld, hw = (size_t)g->h * g->w;
    int off[4], ahead = f4_ahead(hw);
    for (int p = 0; p < 4; p++) off[p] = ((p + g->pad_l) & 3) * q + ((p + g->pad_l) >> 2);
#pragma omp parallel num_threads(nt) if (nt > 1 && units > 1)
    {
        float *pad = padbuf + (size_t)omp_get_thread_num() * hp * row; // this thread's padded plane
        float raw[36 * F4_STAGE];
        memset(pad, 0, (size_t)hp * row * sizeof(float)); // borders stay zero; the inside is overwritten
#pragma omp for schedule(static)
        for (int u = 0; u < units; u++) {
            int c = u % g->c_in, grp = u / g->c_in;
            f4_fill(g, pad, off, x + ((size_t)grp * gi * g->c_in + c) * hw, (size_t)g->c_in * hw, gi, ahead);
            int fill = 0;
            size_t t0 = (size_t)grp * gi * g->tpi; // tile index (in the chunk) of the block's first tile
            float *vc = v + (size_t)c * ld;
            for (int ty = 0; ty < g->th; ty++) {
                for (int f0 = 0; f0 < len;) {
                    int n = len - f0 < F4_STAGE - fill ? len - f0 : F4_STAGE - fill;
                    for (int i = 0; i < span; i++) {
                        const float *prow = pad + (size_t)(4 * ty + i) * row + f0;
                        for (int k = 0; k < span; k++)
                            cpu_wino_copy(raw + (span * i + k) * F4_STAGE + fill,
                                          prow + ((k & 3) * q + (k >> 2)) * gi, n);
                    }
                    fill += n;
                    f0 += n;
                    if (fill == F4_STAGE) {
                        f4_flush(raw, vc + t0, plane, fill, dy);
                        t0 += fill;
                        fill = 0;
                    }
                }
            }
            if (fill) f4_flush(raw, vc + t0, plane, fill, dy);
        }
    }
}

// --- output side -------------------------------------------------------------------------------

// dst[4k + p] = (acc: +=) s_p[k] for 4k + p < n, s_p = src + p * F4_STAGE: four phases of an
// output row interleaved into it.
static void f4_merge(float *restrict dst, int n, const float *restrict src, int acc) {
    int k0 = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
    const __m512i lo_i = _mm512_setr_epi32(0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27);
    const __m512i hi_i = _mm512_setr_epi32(4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31);
    for (; 4 * k0 < n; k0 += 8) { // 8 of each phase: 32 floats of dst
        int nd = n - 4 * k0 < 32 ? n - 4 * k0 : 32, kn = (nd + 3) / 4;
        __mmask8 km = (__mmask8)((1u << kn) - 1);
        __m512 a = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_maskz_loadu_ps(km, src + k0)),
                                      _mm256_maskz_loadu_ps(km, src + F4_STAGE + k0), 1);
        __m512 b = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_maskz_loadu_ps(km, src + 2 * F4_STAGE + k0)),
                                      _mm256_maskz_loadu_ps(km, src + 3 * F4_STAGE + k0), 1);
        __mmask16 ml = (__mmask16)(nd >= 16 ? 0xFFFF : (1u << nd) - 1);
        __mmask16 mh = (__mmask16)(nd <= 16 ? 0 : nd >= 32 ? 0xFFFF : (1u << (nd - 16)) - 1);
        __m512 lo = _mm512_permutex2var_ps(a, lo_i, b), hi = _mm512_permutex2var_ps(a, hi_i, b);
        float *d = dst + 4 * k0;
        if (acc) {
            lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(ml, d));
            hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(mh, d + 16));
        }
        _mm512_mask_storeu_ps(d, ml, lo);
        _mm512_mask_storeu_ps(d + 16, mh, hi);
    }
#endif
    for (int c = 4 * k0; c < n; c++) {
        float s = src[(c & 3) * F4_STAGE + c / 4];
        dst[c] = acc ? dst[c] + s : s;
    }
}

// cpu_wino_kind.output: per group of images (cpu_wino_group) and channel, blocks of up to
// F4_STAGE tiles transformed into 16 output rows (row 4 i + j: output (i, j) of each tile, bias
// added), then merged into the images' rows: runs of a tile row by f4_merge for a single image,
// tile by tile for interleaved ones.
static void f4_output(const cpu_wino_geo *g, const float *m, float *y, const float *b, int nbc, size_t ld,
                      int accumulate, int nt) {
    size_t plane = (size_t)g->c_out * ld, hwo = (size_t)g->ho * g->wo;
    int gi = cpu_wino_group(g, nbc), units = nbc / gi * g->c_out, len = g->tw * gi;
#pragma omp parallel num_threads(nt) if (nt > 1 && units > 1)
    {
        float out[16 * F4_STAGE];
#pragma omp for schedule(static)
        for (int u = 0; u < units; u++) {
            int co = u % g->c_out, img0 = u / g->c_out * gi;
            const float *mc = m + (size_t)co * ld;
            float bias = b ? b[co] : 0.0f, *yc = y + ((size_t)img0 * g->c_out + co) * hwo;
            int t_beg = img0 * g->tpi, t_end = (img0 + gi) * g->tpi;
            for (int t0 = t_beg; t0 < t_end; t0 += F4_STAGE) {
                int n = t_end - t0 < F4_STAGE ? t_end - t0 : F4_STAGE;
#pragma omp simd
                for (int t = 0; t < n; t++) {
                    const float *p = mc + t0 + t;
#define L(i, k) p[(size_t)(6 * (i) + (k)) * plane]
                    F4_AT(a, L(0, 0), L(0, 1), L(0, 2), L(0, 3), L(0, 4), L(0, 5))
                    F4_AT(c, L(1, 0), L(1, 1), L(1, 2), L(1, 3), L(1, 4), L(1, 5))
                    F4_AT(d, L(2, 0), L(2, 1), L(2, 2), L(2, 3), L(2, 4), L(2, 5))
                    F4_AT(f, L(3, 0), L(3, 1), L(3, 2), L(3, 3), L(3, 4), L(3, 5))
                    F4_AT(h, L(4, 0), L(4, 1), L(4, 2), L(4, 3), L(4, 4), L(4, 5))
                    F4_AT(k, L(5, 0), L(5, 1), L(5, 2), L(5, 3), L(5, 4), L(5, 5))
#undef L
#define COL(j)                                                                                 \
    {                                                                                          \
        F4_AT(r, a##j, c##j, d##j, f##j, h##j, k##j)                                           \
        out[(j) * F4_STAGE + t] = r0 + bias;                                                   \
        out[(4 + (j)) * F4_STAGE + t] = r1 + bias;                                             \
        out[(8 + (j)) * F4_STAGE + t] = r2 + bias;                                             \
        out[(12 + (j)) * F4_STAGE + t] = r3 + bias;                                            \
    }
                    COL(0) COL(1) COL(2) COL(3)
#undef COL
                }
                if (gi > 1) { // tile (ty, tx) of image i: the group's tile t0 - t_beg + t
                    for (int t = 0; t < n; t++) {
                        int f = t0 - t_beg + t, ty = f / len, tx = f % len / gi, i = f % gi;
                        float *yp = yc + (size_t)i * g->c_out * hwo + (size_t)(4 * ty) * g->wo + 4 * tx;
                        int rows = g->ho - 4 * ty < 4 ? g->ho - 4 * ty : 4;
                        int cols = g->wo - 4 * tx < 4 ? g->wo - 4 * tx : 4;
                        for (int r = 0; r < rows; r++)
                            for (int k = 0; k < cols; k++) {
                                float o = out[(4 * r + k) * F4_STAGE + t];
                                yp[(size_t)r * g->wo + k] = accumulate ? yp[(size_t)r * g->wo + k] + o : o;
                            }
                    }
                    continue;
                }
                // one image: runs of tiles within one tile row (ty, tx .. tx + len)
                for (int s = 0; s < n;) {
                    int rem = t0 - t_beg + s, ty = rem / g->tw, tx = rem % g->tw;
                    int run = g->tw - tx < n - s ? g->tw - tx : n - s;
                    int cols = g->wo - 4 * tx < 4 * run ? g->wo - 4 * tx : 4 * run;
                    float *yp = yc + (size_t)(4 * ty) * g->wo + 4 * tx;
                    for (int i = 0; i < 4 && 4 * ty + i < g->ho; i++)
                        f4_merge(yp + (size_t)i * g->wo, cols, out + 4 * i * F4_STAGE + s, accumulate);
                    s += run;
                }
            }
        }
    }
}

const cpu_wino_kind cpu_wino_f4 = {4, 36, "F(4x4,3x3)", f4_weights, f4_pad_floats, f4_input, f4_output, f4_dweights};
