// cpu_direct: 3x3 pad-1 convolution computed directly (see cpu_direct.h): stride 1 forward and
// backward data, stride 2 forward (cd_conv_s2, on phase planes).
//
// Why: at 8-16 channels Winograd F(2x2, 3x3) spends most of its time in its transforms and its
// GEMMs have K = C_in = 16, too short to amortise loading their output tiles. Here each image is
// copied once into zero-padded planes ((H+2) x (W+2) per channel), and a register tile of 8
// output channels x 2 vectors of 16 pixels (16 accumulators) takes, for every input channel and
// tap, 2 unaligned loads and 8 broadcast weights for 16 FMAs. Every output element is summed in
// a fixed order (input channel, then tap), so results do not depend on threads.
//
// The backward-data pass is the same kernel: dx = conv(dy, w') with w'[ci][co] the tap-flipped
// w[co][ci], accumulated into dx. The weight gradient stays with Winograd (cpu_winograd.c).
//
// Threads: one image per task (the padded copy is per image, in the thread's scratch slice).
#include "kernels/cpu/cpu_direct.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define CD_HAVE 1
#else
#define CD_HAVE 0
#endif

#define CD_CB 8    // output channels per register tile
#define CD_SLACK 32 // floats after the padded planes: the last tile's loads run past a row

static int cpu_direct_forced = -1; // -1: the environment not read yet

int cpu_direct_force(int mode) {
    int old = __atomic_exchange_n(&cpu_direct_forced, mode == 1 || mode == 2 ? mode : 0, __ATOMIC_RELAXED);
    return old < 0 ? 0 : old;
}

static int cpu_direct_mode(void) {
    int forced = __atomic_load_n(&cpu_direct_forced, __ATOMIC_RELAXED);
    if (forced < 0) { // first use: every thread that gets here reads the same environment
        const char *env = getenv("DIFFOOD_CONV_DIRECT");
        int want = env && !strcmp(env, "0") ? 1 : env && !strcmp(env, "1") ? 2 : 0, unset = -1;
        __atomic_compare_exchange_n(&cpu_direct_forced, &unset, want, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        forced = __atomic_load_n(&cpu_direct_forced, __ATOMIC_RELAXED);
    }
    return forced;
}

int cpu_direct_usable(const ops_conv_shape *s, int bwd_data) {
    if (!CD_HAVE || s->kh != 3 || s->kw != 3 || s->pad_t != 1 || s->pad_l != 1) return 0;
    if (s->stride == 2) { // the forward only
        if (bwd_data) return 0;
        int mode = cpu_direct_mode(), px = ops_conv_out_h(s) * ops_conv_out_w(s);
        if (mode) return mode == 2;
        // Measured (bench-ops --conv, one thread, AMD EPYC Zen 5, ms per call, im2col + GEMM ->
        // direct), batch 32: 16 -> 32 channels 28x28 0.64 -> 0.33, 32 -> 64 14x14 0.51 -> 0.36,
        // 8 -> 16 28x28 0.27 -> 0.10, 64 -> 128 28x28 5.46 -> 4.98; batch 16: 16 channels 32x32
        // 0.33 -> 0.12, 32 channels 32x32 0.88 -> 0.40, 64 channels 16x16 0.67 -> 0.51, 128
        // channels 32x32 7.64 -> 6.34. Losses, where a pixel vector is mostly waste: 4x4 outputs
        // (20 of 32 lanes) 64 -> 128 0.58 -> 0.66, 256 -> 512 6.2 -> 10.7; 7x7 outputs of 128 -> 256
        // 5.0 -> 5.2.
        return px >= 100 || (px >= 49 && s->c_in <= 64);
    }
    if (s->stride != 1 || s->pad_b != 1 || s->pad_r != 1) return 0;
    int mode = cpu_direct_mode();
    if (mode) return mode == 2;
    // Measured (bench-ops --conv, batch 32, one thread, AMD EPYC Zen 5, ms per call, before ->
    // direct; forward / backward data): 16 channels 32x32 0.81 -> 0.70 / 0.77 -> 0.73; 8 channels
    // 32x32 0.37 -> 0.20 / 0.36 -> 0.21; 16 channels 16x16 0.23 -> 0.19 / 0.23 -> 0.19; 16 channels
    // 8x8 0.13 -> 0.09; 16 -> 1 channel 32x32 (im2col before) 0.83 -> 0.37 / 1.8 -> 0.12; 3 -> 16
    // forward 0.30 -> 0.17. Losses: 32 channels on either side (32 -> 32 16x16 0.58 -> 0.67, 32 ->
    // 16 and 16 -> 32 32x32 even or worse), and a backward-data kernel of 16 channels into fewer
    // than 8 (1 -> 16's: 0.12 -> 0.37: 7 of the tile's 8 output channels wasted, against im2col's
    // cheap 9-row GEMM).
    int cin = bwd_data ? s->c_out : s->c_in, cout = bwd_data ? s->c_in : s->c_out;
    return cin <= 16 && cout <= 16 && (cout >= CD_CB || !bwd_data);
}

#if CD_HAVE
// One register tile: output channels co0..co0+7 (those below cout stored) of the two pixel
// vectors at input offsets o[0], o[1] (outputs at q[0], q[1] of planes ys apart, lanes under
// m[0], m[1]) from the input planes xp (cin of them, xs floats apart; tap t at toff[t] from a
// pixel's offset). wt: (cin, 9, cout_pad).
static void cd_tile(float *y, size_t ys, const float *xp, size_t xs, const size_t toff[9], const float *wt,
                    const float *b, int cin, int cout, int cout_pad, int co0, const size_t o[2], const size_t q[2],
                    const __mmask16 m[2], int acc_in) {
    __m512 acc[CD_CB][2];
    for (int c = 0; c < CD_CB; c++) {
        int co = co0 + c;
        for (int v = 0; v < 2; v++) {
            if (acc_in && co < cout) acc[c][v] = _mm512_maskz_loadu_ps(m[v], y + co * ys + q[v]);
            else acc[c][v] = _mm512_set1_ps(b && co < cout ? b[co] : 0.0f);
        }
    }
    for (int ci = 0; ci < cin; ci++) {
        const float *x0 = xp + ci * xs + o[0], *x1 = xp + ci * xs + o[1];
        const float *wc = wt + (size_t)co0 * cin * 9 + (size_t)ci * 9 * CD_CB;
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) {
            __m512 a = _mm512_loadu_ps(x0 + toff[t]), bb = _mm512_loadu_ps(x1 + toff[t]);
            const float *wp = wc + t * CD_CB;
#pragma GCC unroll 8
            for (int c = 0; c < CD_CB; c++) {
                __m512 wv = _mm512_set1_ps(wp[c]);
                acc[c][0] = _mm512_fmadd_ps(a, wv, acc[c][0]);
                acc[c][1] = _mm512_fmadd_ps(bb, wv, acc[c][1]);
            }
        }
    }
    for (int c = 0; c < CD_CB && co0 + c < cout; c++)
        for (int v = 0; v < 2; v++) _mm512_mask_storeu_ps(y + (co0 + c) * ys + q[v], m[v], acc[c][v]);
}

// Pixel vector k (row-major over rows and 16-wide segments) of an H x W plane: its padded-plane
// offset, output offset and lane mask.
static void cd_vec(int k, int nseg, int W, int P, size_t *o, size_t *q, __mmask16 *m) {
    int yy = k / nseg, x0 = (k % nseg) * 16, lanes = W - x0 < 16 ? W - x0 : 16;
    *o = (size_t)yy * P + x0;
    *q = (size_t)yy * W + x0;
    *m = (__mmask16)((1u << lanes) - 1u);
}

// Weights in blocks of CD_CB output channels, each (cin, tap, CD_CB) (a tile's weights
// contiguous: 64 -> 128 channels streamed 295 KiB from L2 per tile in a (cin, tap, cout) layout),
// at wt (cin * 9 * cout_pad floats, zero past cout); backward data: w'[ci][co][t] =
// w[co][ci][8 - t].
static void cd_weights(float *wt, const float *w, int c_out, int c_in, int cout_pad, int bwd_data) {
    int cin = bwd_data ? c_out : c_in;
    memset(wt, 0, (size_t)cin * 9 * cout_pad * sizeof(float));
    for (int o = 0; o < c_out; o++)
        for (int i = 0; i < c_in; i++) {
            int co = bwd_data ? i : o, ci = bwd_data ? o : i;
            float *d = wt + ((size_t)(co / CD_CB) * CD_CB * cin + (size_t)ci * CD_CB) * 9 + co % CD_CB;
            const float *src = w + ((size_t)o * c_in + i) * 9;
            for (int t = 0; t < 9; t++) d[(size_t)(bwd_data ? 8 - t : t) * CD_CB] = src[t];
        }
}

// ev[k] = src[2k], od[k] = src[2k + 1] for the n floats of src.
static inline void cd_split(float *restrict ev, float *restrict od, const float *restrict src, int n) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_add_epi32(ie, _mm512_set1_epi32(1));
    for (int c = 0; c < n; c += 32) { // 32 source floats: 16 even, 16 odd, through masks at the end
        int nb = n - c < 32 ? n - c : 32;
        __mmask16 lo = (__mmask16)(nb >= 16 ? 0xFFFF : (1u << nb) - 1);
        __mmask16 hi = (__mmask16)(nb <= 16 ? 0 : nb >= 32 ? 0xFFFF : (1u << (nb - 16)) - 1);
        __m512 a = _mm512_maskz_loadu_ps(lo, src + c), b = _mm512_maskz_loadu_ps(hi, src + c + 16);
        _mm512_mask_storeu_ps(ev + c / 2, (__mmask16)((1u << ((nb + 1) / 2)) - 1), _mm512_permutex2var_ps(a, ie, b));
        _mm512_mask_storeu_ps(od + c / 2, (__mmask16)((1u << (nb / 2)) - 1), _mm512_permutex2var_ps(a, io, b));
    }
}

// dst[0..n) = src[0..n) through masked vectors (short rows: a memcpy call cost more).
static inline void cd_copy(float *restrict dst, const float *restrict src, int n) {
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, k, _mm512_maskz_loadu_ps(k, src + i));
    }
}

// The stride-2 forward: each image's padded planes split into their four phases (even / odd
// rows x even / odd columns), X_ab[u][v] = xpad[2u + a][2v + b], (HO + 1) x (WO + 1) each, so
// that tap (i, j) of output (oy, ox) is X_(i&1)(j&1)[oy + i/2][ox + j/2]: with the outputs
// numbered p = oy * (WO + 1) + ox (one column of waste per row), a tap is a fixed offset from p
// and the pixel vectors run over whole planes (4x4 outputs: 2 vectors, against 4 of 16 lanes
// used per output row). The outputs go to a wide buffer, then row by row to y.
static int cd_conv_s2(ops_ctx *ctx, const ops_conv_shape *s, float *y, const float *x, const float *w,
                      const float *b) {
    int cin = s->c_in, cout = s->c_out, H = s->h, W = s->w, ho = ops_conv_out_h(s), wo = ops_conv_out_w(s);
    int wq = wo + 1, cout_pad = (cout + CD_CB - 1) / CD_CB * CD_CB, npx = ho * wq, nvec = (npx + 15) / 16;
    size_t pq = (size_t)(ho + 1) * wq, xs = 4 * pq, hw = (size_t)H * W, hwo = (size_t)ho * wo;
    size_t slice = (size_t)cin * xs + CD_SLACK + (size_t)cout * npx, nwt = (size_t)cin * 9 * cout_pad;
    int nt = cpu_threads(ctx);
    if (nt > s->n) nt = s->n;
    float *buf = cpu_scratch(ctx, nwt + slice * nt);
    if (!buf) return err_set(ERR_NOMEM, "conv2d_fwd: out of memory for the direct convolution's planes");
    cd_weights(buf, w, cout, cin, cout_pad, 0);
    size_t toff[9];
    for (int t = 0; t < 9; t++) { // tap (i, j): phase plane (i & 1, j & 1), row i / 2, column j / 2
        int i = t / 3, j = t % 3;
        toff[t] = (size_t)((i & 1) * 2 + (j & 1)) * pq + (size_t)(i >> 1) * wq + (j >> 1);
    }
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *xp = buf + nwt + (size_t)omp_get_thread_num() * slice, *yw = xp + (size_t)cin * xs + CD_SLACK;
        memset(xp, 0, ((size_t)cin * xs + CD_SLACK) * sizeof(float)); // the padding is never written after
#pragma omp for schedule(static)
        for (int img = 0; img < s->n; img++) {
            const float *xi = x + (size_t)img * cin * hw;
            float *yi = y + (size_t)img * cout * hwo;
            // input row r: padded row r + 1 (phase a = (r + 1) & 1, row u = (r + 1) / 2); its even
            // columns 2k (padded 2k + 1) to X_a1[u][k], its odd ones to X_a0[u][k + 1]
            for (int ci = 0; ci < cin; ci++)
                for (int r = 0; r < H && r <= 2 * ho; r++) { // (rows and columns past 2 HO are not read)
                    float *d = xp + ci * xs + (size_t)((r + 1) & 1) * 2 * pq + (size_t)((r + 1) >> 1) * wq;
                    cd_split(d + pq, d + 1, xi + ci * hw + (size_t)r * W, W < 2 * wo + 1 ? W : 2 * wo + 1);
                }
            for (int co0 = 0; co0 < cout; co0 += CD_CB)
                for (int k = 0; k < nvec; k += 2) {
                    size_t o[2] = {(size_t)k * 16, (size_t)(k + 1) * 16};
                    __mmask16 m[2];
                    for (int v = 0; v < 2; v++) {
                        int lanes = npx - (k + v) * 16;
                        m[v] = lanes >= 16 ? (__mmask16)0xFFFF : lanes > 0 ? (__mmask16)((1u << lanes) - 1u) : 0;
                    }
                    if (!m[1]) o[1] = o[0]; // an odd last vector: the second computes nothing
                    cd_tile(yw, npx, xp, xs, toff, buf, b, cin, cout, cout_pad, co0, o, o, m, 0);
                }
            for (int co = 0; co < cout; co++)
                for (int oy = 0; oy < ho; oy++)
                    cd_copy(yi + co * hwo + (size_t)oy * wo, yw + (size_t)co * npx + (size_t)oy * wq, wo);
        }
    }
    return 0;
}
#endif

int cpu_direct_conv(ops_ctx *ctx, const ops_conv_shape *s, float *y, const float *x, const float *w, const float *b,
                    int bwd_data) {
#if CD_HAVE
    if (s->stride == 2) return cd_conv_s2(ctx, s, y, x, w, b);
    int cin = bwd_data ? s->c_out : s->c_in, cout = bwd_data ? s->c_in : s->c_out;
    int H = s->h, W = s->w, P = W + 2, cout_pad = (cout + CD_CB - 1) / CD_CB * CD_CB;
    size_t plane = (size_t)(H + 2) * P, hw = (size_t)H * W, slice = (size_t)cin * plane + CD_SLACK;
    size_t nwt = (size_t)cin * 9 * cout_pad;
    int nt = cpu_threads(ctx);
    if (nt > s->n) nt = s->n;
    float *buf = cpu_scratch(ctx, nwt + slice * nt);
    if (!buf) return err_set(ERR_NOMEM, "%s: out of memory for the direct convolution's planes",
                             bwd_data ? "conv2d_bwd_data" : "conv2d_fwd");
    // weights as (cin, tap, cout_pad); backward data: w'[ci][co][t] = w[co][ci][8 - t]
    float *wt = buf;
    cd_weights(wt, w, s->c_out, s->c_in, cout_pad, bwd_data);
    int nseg = (W + 15) / 16, nvec = H * nseg;
    const size_t toff[9] = {0, 1, 2, (size_t)P, (size_t)P + 1, (size_t)P + 2, 2 * (size_t)P, 2 * (size_t)P + 1,
                            2 * (size_t)P + 2};
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int img = 0; img < s->n; img++) {
        float *xp = buf + nwt + (size_t)omp_get_thread_num() * slice;
        const float *xi = x + (size_t)img * cin * hw;
        float *yi = y + (size_t)img * cout * hw;
        memset(xp, 0, slice * sizeof(float));
        for (int ci = 0; ci < cin; ci++)
            for (int r = 0; r < H; r++) memcpy(xp + ci * plane + (size_t)(r + 1) * P + 1, xi + ci * hw + (size_t)r * W,
                                               (size_t)W * sizeof(float));
        for (int co0 = 0; co0 < cout; co0 += CD_CB)
            for (int k = 0; k < nvec; k += 2) {
                size_t o[2], q[2];
                __mmask16 m[2];
                cd_vec(k, nseg, W, P, &o[0], &q[0], &m[0]);
                if (k + 1 < nvec) cd_vec(k + 1, nseg, W, P, &o[1], &q[1], &m[1]);
                else o[1] = o[0], q[1] = q[0], m[1] = 0; // an odd last vector: the second computes nothing
                cd_tile(yi, hw, xp, plane, toff, wt, bwd_data ? NULL : b, cin, cout, cout_pad, co0, o, q, m, bwd_data);
            }
    }
    return 0;
#else
    (void)ctx, (void)s, (void)y, (void)x, (void)w, (void)b, (void)bwd_data;
    return err_set(ERR_INTERNAL, "cpu_direct_conv: built without AVX-512");
#endif
}
