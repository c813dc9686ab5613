// cpu_wino_impl: what the Winograd files of the CPU backend share (internal to
// cpu_winograd.c, cpu_wino_f2.c and cpu_wino_f4.c): the tile geometry of one convolution, the
// table of one Winograd variant's transforms, and the short copy the transforms stage through.
//
// A variant F(m x m, 3x3) turns each (m + 2) x (m + 2) input tile into ne = (m + 2)^2 values
// V_e, each 3x3 kernel into U_e, and the ne products M_e = U_e V_e (summed over input channels
// by ne GEMMs, cpu_winograd.c) back into an m x m output tile. Layouts, for the T tiles of a
// chunk of images: V_e (C_in, T) at v[e * C_in * T + c * T + t], M_e (C_out, T) likewise,
// U_e (C_out, C_in) at u[e * C_out * C_in + ...]. The tiles of a chunk's images come in groups
// of gi images (cpu_wino_group): tile (ty, tx) of image i is t = (i / gi) * gi * tpi +
// (ty * tw + tx) * gi + i % gi, so that the SIMD loops of the transforms, which run over the
// tiles of a tile row, get tw * gi of them.
#ifndef DIFFOOD_CPU_WINO_IMPL_H
#define DIFFOOD_CPU_WINO_IMPL_H

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "kernels/cpu/cpu_internal.h"

typedef struct {
    int c_in, c_out, h, w, ho, wo; // geometry of the forward convolution being computed
    int pad_t, pad_l;
    int th, tw, tpi; // tiles per column, per row, per image
} cpu_wino_geo;

typedef struct {
    int m, ne; // output tile side; transformed values per tile, (m + 2)^2
    const char *name;
    // U_e (C_out', C_in') from w (C_out, C_in, 3, 3); flip: the backward-data kernel
    // w'[a][b][i][j] = w[b][a][2-i][2-j] (C_out' = C_in, C_in' = C_out).
    void (*weights)(const float *w, float *u, int c_out, int c_in, int flip, int nt);
    // Floats of the per-thread padded plane that `input` needs for geometry g and groups of gi
    // images.
    size_t (*pad_floats)(const cpu_wino_geo *g, int gi);
    // V_e (C_in, T) of the images x[0..nbc) (each (C_in, H, W)), ld = T of the chunk; dy 1: the
    // transform of output-gradient tiles (m x m blocks of (C_out, HO, WO) planes, g describing
    // them) for the weight gradient. padbuf: nt padded planes of pad_floats(g).
    void (*input)(const cpu_wino_geo *g, const float *x, float *v, int nbc, size_t ld, int nt, float *padbuf, int dy);
    // y[0..nbc) (C_out, HO, WO) = (accumulate: +=) A^T M A (+ b, may be NULL) from M_e (C_out, T).
    void (*output)(const cpu_wino_geo *g, const float *m, float *y, const float *b, int nbc, size_t ld, int accumulate,
                   int nt);
    // dw (C_out, C_in, 3, 3) += G^T dU_e G from dU_e (C_out, C_in).
    void (*dweights)(const float *du, float *dw, int c_out, int c_in, int nt);
} cpu_wino_kind;

// Where the weight transforms read kernel (a, b) of the convolution computed: element (i, j)
// at w[a * sa + b * sb + k[3 i + j]], w[a][b] of w (C_out, C_in, 3, 3) or, flipped for the
// backward-data pass, w[b][a] with (i, j) mirrored.
static inline void cpu_wino_kernel_at(int flip, int c_in, size_t *sa, size_t *sb, int k[9]) {
    *sa = flip ? 9 : (size_t)c_in * 9;
    *sb = flip ? (size_t)c_in * 9 : 9;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) k[i * 3 + j] = flip ? (2 - i) * 3 + (2 - j) : i * 3 + j;
}

// Images per group of a chunk of nbc images (the tile order above): all of them where a tile row
// is shorter than CPU_WINO_GROUP_TW tiles (planes up to 16x16 for F(2x2), 32x32 for F(4x4)),
// else 1. Before, the transforms of a small plane ran SIMD loops of 1-7 tiles (GCC's scalar
// epilogues) and F(4x4) gathered its tiles in copies of 1-2 floats. Measured (bench-ops --conv,
// AMD EPYC Zen 5, one thread, batch 32, ms per call, forward / backward data / weight gradient,
// before -> grouped): 128 channels 4x4 0.67 / 0.71 / 1.01 -> 0.43 / 0.43 / 0.55; 64 channels
// 7x7 0.82 / 0.71 / 0.92 -> 0.41 / 0.41 / 0.60; 32 channels 14x14 0.83 / 0.83 / 1.07 -> 0.61 /
// 0.63 / 0.71 (with the whole-vector tile rows of cpu_wino_f2.c); batch 16, 256 channels 8x8
// 2.95 / 3.53 / 4.21 -> 2.66 / 2.64 / 3.35.
#define CPU_WINO_GROUP_TW 16
static inline int cpu_wino_group(const cpu_wino_geo *g, int nbc) {
    return g->tw < CPU_WINO_GROUP_TW ? nbc : 1;
}

extern const cpu_wino_kind cpu_wino_f2; // F(2x2, 3x3): cpu_wino_f2.c
extern const cpu_wino_kind cpu_wino_f4; // F(4x4, 3x3): cpu_wino_f4.c

// dst[0..n) = src[0..n): the staging copies are short (often 1-64 floats), where a memcpy call
// costs more than the copy. GCC turns a plain loop, and even a loop of AVX loads and stores,
// back into a memmove call (perf: 5-10% of a fmnist UNet step in memmove): the value goes
// through an empty asm so that no memcpy idiom is left to recognise.
static inline void cpu_wino_copy(float *restrict dst, const float *restrict src, int n) {
    int i = 0;
#ifdef __AVX512F__
    for (; i + 16 <= n; i += 16) {
        __m512 t = _mm512_loadu_ps(src + i);
        __asm__("" : "+v"(t)); // an opaque value: GCC can no longer see a memcpy idiom in the loop
        _mm512_storeu_ps(dst + i, t);
    }
    if (i < n) { // the tail through a mask (a scalar tail loop became a memcpy call too)
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, k, _mm512_maskz_loadu_ps(k, src + i));
    }
#else
#ifdef __AVX2__
    for (; i + 8 <= n; i += 8) {
        __m256 t = _mm256_loadu_ps(src + i);
        __asm__("" : "+x"(t)); // an opaque value: GCC can no longer see a memcpy idiom in the loop
        _mm256_storeu_ps(dst + i, t);
    }
#endif
    for (; i < n; i++) {
        float t = src[i];
        __asm__("" : "+x"(t));
        dst[i] = t;
    }
#endif
}

#endif
