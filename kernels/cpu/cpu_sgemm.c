// cpu_sgemm: own GEMM for small, skinny matrices (see cpu_sgemm.h for why and what it
// guarantees).
//
// Loop nest: columns of C in panels of CPU_SGEMM_NR (16), then k in blocks of CPU_SGEMM_KC, then
// rows in tiles of CPU_SGEMM_MR (6; 8 with AVX-512). A 6 x 16 tile of C lives in 12 AVX registers over a k
// block; per k it loads two vectors of op(B) and broadcasts six elements of op(A). op(B) is read
// in place (B not transposed: a 16-float slice of a row) or, when transposed, first copied into
// a k-block x 16 panel on the stack (its columns are strided rows of B); either way the panel
// stays in L1 while every row tile of C passes over it. A short last panel is read and written
// through masks (AVX) and never touches memory past the matrix.
#include "kernels/cpu/cpu_sgemm.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#if defined(__x86_64__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#define CPU_SGEMM_MR 6    // rows of the AVX2 tile (12 of the 16 YMM registers accumulate)
#define CPU_SGEMM_MR512 8 // rows of the AVX-512 tile (16 of 32 ZMM; channel counts are multiples of 8)
#define CPU_SGEMM_NR 16
#define CPU_SGEMM_KC 256

// Where a k block of the current 16-column panel of op(B) is: b[p * bs + j] for p < kc, j < nr.
typedef struct {
    const float *b;
    size_t bs;
} cpu_sg_panel;

#ifdef __AVX2__
// C tile (mr x nr at c, ldc) = or += alpha * op(A) tile (a[r * ars + p * acs]) x panel, over kc.
// first: C = alpha * acc + beta * C (beta 0: C not read); later blocks: C += alpha * acc.
// mr and full (nr == 16) are compile-time constants in every call (always_inline + switch), so
// the accumulators stay in registers and the loops unroll.
static inline __attribute__((always_inline)) void cpu_sg_tile(const int mr, const int full, int nr, int kc,
                                                              const float *a, size_t ars, size_t acs,
                                                              cpu_sg_panel pn, float *c, size_t ldc, float alpha,
                                                              float beta, int first) {
    __m256 acc0[CPU_SGEMM_MR], acc1[CPU_SGEMM_MR];
    for (int r = 0; r < mr; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mk0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
    const __m256i mk1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
    const float *bp = pn.b;
    for (int p = 0; p < kc; p++, bp += pn.bs) {
        __m256 b0 = full ? _mm256_loadu_ps(bp) : _mm256_maskload_ps(bp, mk0);
        __m256 b1 = full ? _mm256_loadu_ps(bp + 8) : _mm256_maskload_ps(bp + 8, mk1);
        const float *ap = a + (size_t)p * acs;
        for (int r = 0; r < mr; r++) {
            __m256 av = _mm256_broadcast_ss(ap + (size_t)r * ars);
            acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
        }
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(first ? beta : 1.0f);
    const int read = !first || beta != 0.0f;
    for (int r = 0; r < mr; r++) {
        float *cr = c + (size_t)r * ldc;
        __m256 x0 = _mm256_mul_ps(va, acc0[r]), x1 = _mm256_mul_ps(va, acc1[r]);
        if (full) {
            if (read) {
                x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), x0);
                x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), x1);
            }
            _mm256_storeu_ps(cr, x0);
            _mm256_storeu_ps(cr + 8, x1);
        } else {
            if (read) {
                x0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr, mk0), x0);
                x1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr + 8, mk1), x1);
            }
            _mm256_maskstore_ps(cr, mk0, x0);
            _mm256_maskstore_ps(cr + 8, mk1, x1);
        }
    }
}

#define CPU_SG_CASE(MR)                                                                        \
    case MR:                                                                                   \
        if (nr == CPU_SGEMM_NR)                                                                \
            cpu_sg_tile(MR, 1, nr, kc, a, ars, acs, pn, c, ldc, alpha, beta, first);           \
        else                                                                                   \
            cpu_sg_tile(MR, 0, nr, kc, a, ars, acs, pn, c, ldc, alpha, beta, first);           \
        break;

static void cpu_sg_tile_any(int mr, int nr, int kc, const float *a, size_t ars, size_t acs, cpu_sg_panel pn, float *c,
                            size_t ldc, float alpha, float beta, int first) {
    switch (mr) {
        CPU_SG_CASE(6)
        CPU_SG_CASE(5)
        CPU_SG_CASE(4)
        CPU_SG_CASE(3)
        CPU_SG_CASE(2)
        CPU_SG_CASE(1)
    default:
        break;
    }
}
#undef CPU_SG_CASE
#else
// Plain C: the same order of summation per element (without FMA the last bits differ).
static void cpu_sg_tile_any(int mr, int nr, int kc, const float *a, size_t ars, size_t acs, cpu_sg_panel pn, float *c,
                            size_t ldc, float alpha, float beta, int first) {
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            float acc = 0.0f;
            for (int p = 0; p < kc; p++) acc += a[(size_t)r * ars + (size_t)p * acs] * pn.b[(size_t)p * pn.bs + j];
            float *cr = c + (size_t)r * ldc + j;
            if (!first)
                *cr += alpha * acc;
            else
                *cr = beta != 0.0f ? alpha * acc + beta * *cr : alpha * acc;
        }
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_SG_HAVE_512 1
#define CPU_SG_T512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
// The AVX-512 tile: 8 x 32 (two ZMM registers a row), the same loop and the same order of
// operations per element as cpu_sg_tile, so both give the same bits.
static inline __attribute__((always_inline)) CPU_SG_T512 void cpu_sg_tile512(const int mr, const int full, const int two,
                                                                            int nr, int kc,
                                                                            const float *a, size_t ars, size_t acs,
                                                                            cpu_sg_panel pn, float *c, size_t ldc,
                                                                            float alpha, float beta, int first) {
    __m512 acc0[CPU_SGEMM_MR512], acc1[CPU_SGEMM_MR512];
    for (int r = 0; r < mr; r++) acc0[r] = acc1[r] = _mm512_setzero_ps();
    const __mmask16 k0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    const __mmask16 k1 = nr >= 32 ? (__mmask16)0xFFFF : nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1);
    const float *bp = pn.b;
    for (int p = 0; p < kc; p++, bp += pn.bs) {
        __m512 b0 = full ? _mm512_loadu_ps(bp) : _mm512_maskz_loadu_ps(k0, bp);
        __m512 b1 = !two ? b0 : full ? _mm512_loadu_ps(bp + 16) : _mm512_maskz_loadu_ps(k1, bp + 16);
        const float *ap = a + (size_t)p * acs;
        for (int r = 0; r < mr; r++) {
            __m512 av = _mm512_set1_ps(ap[(size_t)r * ars]);
            acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
            if (two) acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(first ? beta : 1.0f);
    const int read = !first || beta != 0.0f;
    for (int r = 0; r < mr; r++) {
        float *cr = c + (size_t)r * ldc;
        __m512 x0 = _mm512_mul_ps(va, acc0[r]), x1 = _mm512_mul_ps(va, acc1[r]);
        if (full) {
            if (read) {
                x0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr), x0);
                x1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr + 16), x1);
            }
            _mm512_storeu_ps(cr, x0);
            _mm512_storeu_ps(cr + 16, x1);
        } else {
            if (read) {
                x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(k0, cr), x0);
                if (two) x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(k1, cr + 16), x1);
            }
            _mm512_mask_storeu_ps(cr, k0, x0);
            if (two) _mm512_mask_storeu_ps(cr + 16, k1, x1);
        }
    }
}

#define CPU_SG_CASE(MR)                                                                        \
    case MR:                                                                                   \
        if (nr == 2 * CPU_SGEMM_NR)                                                            \
            cpu_sg_tile512(MR, 1, 1, nr, kc, a, ars, acs, pn, c, ldc, alpha, beta, first);     \
        else if (nr > CPU_SGEMM_NR)                                                            \
            cpu_sg_tile512(MR, 0, 1, nr, kc, a, ars, acs, pn, c, ldc, alpha, beta, first);     \
        else                                                                                   \
            cpu_sg_tile512(MR, 0, 0, nr, kc, a, ars, acs, pn, c, ldc, alpha, beta, first);     \
        break;

static CPU_SG_T512 void cpu_sg_tile_any512(int mr, int nr, int kc, const float *a, size_t ars, size_t acs,
                                           cpu_sg_panel pn, float *c, size_t ldc, float alpha, float beta, int first) {
    switch (mr) {
        CPU_SG_CASE(8)
        CPU_SG_CASE(7)
        CPU_SG_CASE(6)
        CPU_SG_CASE(5)
        CPU_SG_CASE(4)
        CPU_SG_CASE(3)
        CPU_SG_CASE(2)
        CPU_SG_CASE(1)
    default:
        break;
    }
}
#undef CPU_SG_CASE
#endif

// Columns [j0, j1) of C in panels of W columns, each row tile by TILE: defined once per kernel
// width (a direct call that the compiler inlines; through a function pointer the small GEMMs
// ran 35% slower).
#define CPU_SG_COLS_DEF(NAME, ATTR, W, MR, TILE)                                                   \
    static ATTR void NAME(int ta, int tb, int m, int j0, int j1, int k, float alpha, const float *a, int lda, \
                          const float *b, int ldb, float beta, float *c, int ldc) {              \
        size_t ars = ta ? 1 : (size_t)lda, acs = ta ? (size_t)lda : 1;                           \
        float packed[CPU_SGEMM_KC * (W)] __attribute__((aligned(64)));                           \
        for (int j = j0; j < j1; j += (W)) {                                                     \
            int nr = j1 - j < (W) ? j1 - j : (W);                                                \
            if (k == 0) { /* C = beta * C (alpha times an empty sum) */                          \
                for (int i = 0; i < m; i++)                                                      \
                    for (int jj = 0; jj < nr; jj++) {                                            \
                        float *cr = c + (size_t)i * ldc + j + jj;                                \
                        *cr = beta != 0.0f ? beta * *cr : 0.0f;                                  \
                    }                                                                            \
                continue;                                                                        \
            }                                                                                    \
            for (int p0 = 0; p0 < k; p0 += CPU_SGEMM_KC) {                                       \
                int kc = k - p0 < CPU_SGEMM_KC ? k - p0 : CPU_SGEMM_KC;                          \
                cpu_sg_panel pn = {b + (size_t)p0 * ldb + j, (size_t)ldb};                       \
                if (tb) { /* op(B)[p][j] = B[j][p]: rows of B into the panel's columns */        \
                    for (int jj = 0; jj < nr; jj++) {                                            \
                        const float *src = b + (size_t)(j + jj) * ldb + p0;                      \
                        for (int p = 0; p < kc; p++) packed[p * (W) + jj] = src[p];              \
                    }                                                                            \
                    for (int jj = nr; jj < (W); jj++)                                            \
                        for (int p = 0; p < kc; p++) packed[p * (W) + jj] = 0.0f;                \
                    pn = (cpu_sg_panel){packed, (size_t)(W)};                                    \
                }                                                                                \
                for (int i = 0; i < m; i += (MR)) {                                              \
                    int mr = m - i < (MR) ? m - i : (MR);                                        \
                    TILE(mr, nr, kc, a + (size_t)i * ars + (size_t)p0 * acs, ars, acs, pn,       \
                         c + (size_t)i * ldc + j, (size_t)ldc, alpha, beta, p0 == 0);            \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
    }

CPU_SG_COLS_DEF(cpu_sg_cols, , CPU_SGEMM_NR, CPU_SGEMM_MR, cpu_sg_tile_any)
#ifdef CPU_SG_HAVE_512
CPU_SG_COLS_DEF(cpu_sg_cols512, CPU_SG_T512, 2 * CPU_SGEMM_NR, CPU_SGEMM_MR512, cpu_sg_tile_any512)
#endif

#ifdef CPU_SG_HAVE_512
// op(B) transposed on AVX-512: dot products, no panel. Both operands are contiguous along k
// (C[i][j] = sum_p A[i][p] B[j][p]); a 4 x 4 tile of C keeps one ZMM accumulator per element,
// lane l summing the products p = l (mod 16) in order, the lanes added at the end
// (cpu_sg_reduce16). Packing the transposed panel instead cost twice the FMAs on the
// Winograd weight gradients (C 16-32 x 16-32, k = 128-512 tiles). Rows past m or j1 repeat the
// last one and are not stored. Only for C of fewer than CPU_SG_DOT_MAX_M rows: with more, the
// packed panel is shared by enough row tiles and wins (AMD Zen 5, k = 128: 512 x 512 at 204
// GFLOP/s packed against 95 dot; 16 x 16, k = 256: 143 dot against 52 packed).
#define CPU_SG_DOT_MAX_M 64

// The 16 sums of a 4 x 4 tile's accumulators at once, lane 4r + q = sum of acc[r][q]'s lanes,
// each as the tree s8[l] = l[l] + l[l+8], s4 = s8[l] + s8[l+4], s2 = s4[l] + s4[l+2], s2[0] + s2[1]:
// 15 additions and 30 shuffles for the tile instead of 16 separate reductions (which cost as much
// as the products for k = 128). Inputs go in as a[m] = acc[m % 4][m / 4], so that the last
// level's 128-bit block k, [a_k, a_4+k, a_8+k, a_12+k], is row k of the tile.
static inline __attribute__((always_inline)) CPU_SG_T512 __m512 cpu_sg_reduce16(__m512 acc[4][4]) {
    __m512 t[8], u[4], v[2];
    for (int h = 0; h < 8; h++) { // blocks 0-1: 8 partials of a[2h], blocks 2-3: of a[2h+1]
        __m512 x = acc[(2 * h) % 4][(2 * h) / 4], y = acc[(2 * h + 1) % 4][(2 * h + 1) / 4];
        t[h] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xEE));
    }
    for (int h = 0; h < 4; h++) // block b: 4 partials of a[4h + b]
        u[h] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * h], t[2 * h + 1], 0x88),
                             _mm512_shuffle_f32x4(t[2 * h], t[2 * h + 1], 0xDD));
    for (int h = 0; h < 2; h++) // block b: 2 partials of a[8h + b], 2 of a[8h + 4 + b]
        v[h] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * h], u[2 * h + 1], 0x44),
                             _mm512_shuffle_ps(u[2 * h], u[2 * h + 1], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(v[0], v[1], 0x88), _mm512_shuffle_ps(v[0], v[1], 0xDD));
}
static CPU_SG_T512 void cpu_sg_nt512(int m, int j0, int j1, int k, float alpha, const float *a, int lda,
                                     const float *b, int ldb, float beta, float *c, int ldc) {
    const __mmask16 tail = (__mmask16)((1u << (k % 16)) - 1);
    const int kv = k - k % 16;
    for (int i = 0; i < m; i += 4) {
        const float *ar[4];
        for (int r = 0; r < 4; r++) ar[r] = a + (size_t)(i + r < m ? i + r : m - 1) * lda;
        for (int j = j0; j < j1; j += 4) {
            const float *br[4];
            for (int q = 0; q < 4; q++) br[q] = b + (size_t)(j + q < j1 ? j + q : j1 - 1) * ldb;
            __m512 acc[4][4];
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
#define CPU_SG_NT_STEP(LOAD)                                                                   \
    do {                                                                                       \
        __m512 b0 = LOAD(br[0] + p), b1 = LOAD(br[1] + p), b2 = LOAD(br[2] + p), b3 = LOAD(br[3] + p); \
        for (int r = 0; r < 4; r++) {                                                          \
            __m512 av = LOAD(ar[r] + p);                                                       \
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);                                    \
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);                                    \
            acc[r][2] = _mm512_fmadd_ps(av, b2, acc[r][2]);                                    \
            acc[r][3] = _mm512_fmadd_ps(av, b3, acc[r][3]);                                    \
        }                                                                                      \
    } while (0)
#define CPU_SG_TAIL_LOAD(x) _mm512_maskz_loadu_ps(tail, (x))
            int p = 0;
            for (; p < kv; p += 16) CPU_SG_NT_STEP(_mm512_loadu_ps);
            if (tail) CPU_SG_NT_STEP(CPU_SG_TAIL_LOAD);
#undef CPU_SG_TAIL_LOAD
#undef CPU_SG_NT_STEP
            float sum[16];
            _mm512_storeu_ps(sum, cpu_sg_reduce16(acc));
            for (int r = 0; r < 4 && i + r < m; r++)
                for (int q = 0; q < 4 && j + q < j1; q++) {
                    float *cr = c + (size_t)(i + r) * ldc + j + q, x = alpha * sum[4 * r + q];
                    *cr = beta != 0.0f ? x + beta * *cr : x;
                }
        }
    }
}
#endif

// Which kernels run: 2 = AVX-512 (the CPU has F, VL, BW, DQ), 1 = AVX2 or plain C; chosen on
// first use, or forced by DIFFOOD_CPU_ISA=avx2 (A/B benchmarks) and cpu_sgemm_force_isa (tests).
static int cpu_sg_isa;

// Whether the AVX-512 kernels can run here (the CPU and OS have F, VL, BW, DQ).
static int cpu_sg_can_512(void) {
#ifdef CPU_SG_HAVE_512
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#else
    return 0;
#endif
}

static int cpu_sg_isa_get(void) {
    int isa = __atomic_load_n(&cpu_sg_isa, __ATOMIC_RELAXED);
    if (isa) return isa;
    const char *env = getenv("DIFFOOD_CPU_ISA");
    isa = (!env || strcmp(env, "avx2")) && cpu_sg_can_512() ? 2 : 1;
    __atomic_store_n(&cpu_sg_isa, isa, __ATOMIC_RELAXED);
    return isa;
}

int cpu_sgemm_force_isa(int isa) {
    int old = cpu_sg_isa_get();
    if (isa == 2 && !cpu_sg_can_512()) return -1;
    __atomic_store_n(&cpu_sg_isa, isa == 2 ? 2 : 1, __ATOMIC_RELAXED);
    return old;
}

static void cpu_sg_run(int isa, int ta, int tb, int m, int j0, int j1, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, float beta, float *c, int ldc) {
#ifdef CPU_SG_HAVE_512
    if (isa == 2) {
        if (tb && m < CPU_SG_DOT_MAX_M)
            cpu_sg_nt512(m, j0, j1, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else
            cpu_sg_cols512(ta, tb, m, j0, j1, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#endif
    (void)isa;
    cpu_sg_cols(ta, tb, m, j0, j1, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int cpu_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
              float beta, float *c, int ldc) {
    if (ta && tb) return -1;
    if (m <= 0 || n <= 0) return 0;
    cpu_sg_run(cpu_sg_isa_get(), ta, tb, m, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return 0;
}

int cpu_sgemm_mt(int nt, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc) {
    if (ta && tb) return -1;
    if (m <= 0 || n <= 0) return 0;
    int isa = cpu_sg_isa_get(), w = isa == 2 ? 2 * CPU_SGEMM_NR : CPU_SGEMM_NR;
    int panels = (n + w - 1) / w;
    if (nt > panels) nt = panels;
    if (nt <= 1 || (double)m * n * k < 65536.0) {
        cpu_sg_run(isa, ta, tb, m, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return 0;
    }
    // whole panels per thread: every element is computed exactly as with one thread
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int t = 0; t < nt; t++) {
        int p0 = (int)((long)panels * t / nt), p1 = (int)((long)panels * (t + 1) / nt);
        int j0 = p0 * w, j1 = p1 * w < n ? p1 * w : n;
        if (j1 > j0) cpu_sg_run(isa, ta, tb, m, j0, j1, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
    return 0;
}
