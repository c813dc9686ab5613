// cpu_direct: 3x3 stride-1 pad-1 convolution computed directly (see cpu_direct.h).
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
    if (!CD_HAVE || s->kh != 3 || s->kw != 3 || s->stride != 1 || s->pad_t != 1 || s->pad_l != 1 || s->pad_b != 1 ||
        s->pad_r != 1)
        return 0;
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
// vectors at padded offsets o[0], o[1] (outputs at q[0], q[1], lanes under m[0], m[1]) from
// the padded planes xp (cin planes of `plane` floats, rows of P). wt: (cin, 9, cout_pad).
static void cd_tile(float *y, const float *xp, const float *wt, const float *b, int cin, int cout, int cout_pad,
                    size_t plane, int P, size_t hw, int co0, const size_t o[2], const size_t q[2],
                    const __mmask16 m[2], int acc_in) {
    __m512 acc[CD_CB][2];
    for (int c = 0; c < CD_CB; c++) {
        int co = co0 + c;
        for (int v = 0; v < 2; v++) {
            if (acc_in && co < cout) acc[c][v] = _mm512_maskz_loadu_ps(m[v], y + co * hw + q[v]);
            else acc[c][v] = _mm512_set1_ps(b && co < cout ? b[co] : 0.0f);
        }
    }
    const size_t toff[9] = {0, 1, 2, (size_t)P, (size_t)P + 1, (size_t)P + 2, 2 * (size_t)P, 2 * (size_t)P + 1,
                            2 * (size_t)P + 2};
    for (int ci = 0; ci < cin; ci++) {
        const float *x0 = xp + ci * plane + o[0], *x1 = xp + ci * plane + o[1];
        const float *wc = wt + (size_t)ci * 9 * cout_pad + co0;
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) {
            __m512 a = _mm512_loadu_ps(x0 + toff[t]), bb = _mm512_loadu_ps(x1 + toff[t]);
            const float *wp = wc + (size_t)t * cout_pad;
#pragma GCC unroll 8
            for (int c = 0; c < CD_CB; c++) {
                __m512 wv = _mm512_set1_ps(wp[c]);
                acc[c][0] = _mm512_fmadd_ps(a, wv, acc[c][0]);
                acc[c][1] = _mm512_fmadd_ps(bb, wv, acc[c][1]);
            }
        }
    }
    for (int c = 0; c < CD_CB && co0 + c < cout; c++)
        for (int v = 0; v < 2; v++) _mm512_mask_storeu_ps(y + (co0 + c) * hw + q[v], m[v], acc[c][v]);
}

// Pixel vector k (row-major over rows and 16-wide segments) of an H x W plane: its padded-plane
// offset, output offset and lane mask.
static void cd_vec(int k, int nseg, int W, int P, size_t *o, size_t *q, __mmask16 *m) {
    int yy = k / nseg, x0 = (k % nseg) * 16, lanes = W - x0 < 16 ? W - x0 : 16;
    *o = (size_t)yy * P + x0;
    *q = (size_t)yy * W + x0;
    *m = (__mmask16)((1u << lanes) - 1u);
}
#endif

int cpu_direct_conv(ops_ctx *ctx, const ops_conv_shape *s, float *y, const float *x, const float *w, const float *b,
                    int bwd_data) {
#if CD_HAVE
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
    memset(wt, 0, nwt * sizeof(float));
    for (int o = 0; o < s->c_out; o++)
        for (int i = 0; i < s->c_in; i++)
            for (int t = 0; t < 9; t++) {
                float v = w[((size_t)o * s->c_in + i) * 9 + t];
                if (bwd_data) wt[((size_t)o * 9 + (8 - t)) * cout_pad + i] = v;
                else wt[((size_t)i * 9 + t) * cout_pad + o] = v;
            }
    int nseg = (W + 15) / 16, nvec = H * nseg;
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
                cd_tile(yi, xp, wt, bwd_data ? NULL : b, cin, cout, cout_pad, plane, P, hw, co0, o, q, m, bwd_data);
            }
    }
    return 0;
#else
    (void)ctx, (void)s, (void)y, (void)x, (void)w, (void)b, (void)bwd_data;
    return err_set(ERR_INTERNAL, "cpu_direct_conv: built without AVX-512");
#endif
}
