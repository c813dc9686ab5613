// cpu_winograd: 3x3 stride-1 convolution by Winograd's minimal filtering (Lavin & Gray, 2016):
// F(2x2, 3x3) (2.25x fewer multiplications than im2col + GEMM; cpu_wino_f2.c) for most layers,
// F(4x4, 3x3) (4x; cpu_wino_f4.c) where it measured faster (cpu_wino_pick). Used by
// conv2d_fwd, by conv2d_bwd_data as a forward convolution of dy with the flipped, transposed
// kernel, and by conv2d_bwd_weight through the adjoint transforms.
//
// The ne = (m + 2)^2 element-wise products of a variant, summed over input channels, are ne
// GEMMs: M_e (C_out, T) = U_e (C_out, C_in) V_e (C_in, T) over the T tiles of a chunk of images
// (cpu_sgemm). Threads as in cpu_conv.c: chunks in one OpenMP loop, single-threaded inside,
// when there are enough of them; otherwise the transforms run over planes and the GEMMs over e
// with all the threads.
#include "kernels/cpu/cpu_winograd.h"

#include <omp.h>
#include <stdlib.h>

#include "common/err.h"
#include "kernels/cpu/cpu_sgemm.h"
#include "kernels/cpu/cpu_wino_impl.h"

// Tiles per chunk (whole images, at least one): as many as keep a chunk's V and M (ne *
// (C_in + C_out) floats per tile) within CPU_WINO_CHUNK_BYTES, so that they stay in the L2
// cache between the transforms and the GEMMs, but within [CPU_WINO_TILES_MIN, _MAX] so that
// the GEMMs stay well shaped. Measured on the Fashion-MNIST UNet (C 16-64, 32x32 to 8x8,
// batch 16, 2 threads, F(2x2, 3x3)): 256 KiB trains 12% faster than the former fixed 512 tiles
// (2 images of 32x32 per chunk); the paper UNet's 128-256 channel convolutions gain 3-11% too.
#define CPU_WINO_CHUNK_BYTES ((size_t)256 << 10)
#define CPU_WINO_TILES_MIN 128
#define CPU_WINO_TILES_MAX 512
#define CPU_WINO_OUTER_MAX ((size_t)512 << 20) // bytes of per-thread slices, in all

// -1: not read yet; 0: chosen per convolution; 2 or 4: that variant. Atomic: replicas
// (common/nn/nn_rep.c) run convolutions on several threads, and the first ones read it at once.
static int cpu_wino_forced = -1;

int cpu_winograd_force(int m) {
    int old = __atomic_exchange_n(&cpu_wino_forced, m == 2 || m == 4 ? m : 0, __ATOMIC_RELAXED);
    return old < 0 ? 0 : old;
}

// The variant for a convolution of geometry g: F(4x4, 3x3) where it was measured faster, else
// F(2x2, 3x3); forced by cpu_winograd_force or DIFFOOD_WINOGRAD=2|4. F(4x4) does 1.8x fewer
// GEMM FLOPs but its transforms cost more per output (36 values per tile through 36 streams),
// so it wins only where the GEMMs dominate: forward and backward-data convolutions of at
// least 64 channels in and out on planes of 3x3 to 8x8, or 256 channels up to 16x16. Measured
// (bench-ops --conv, AMD EPYC Zen 5, one thread, ms per call, F(2x2) -> F(4x4)): batch 64:
// 128 channels 4x4 1.59 -> 1.27, 64 channels 8x8 1.53 -> 1.30; batch 32: 256 channels 16x16
// 21-22 -> 18.4-20.0, 512 channels 4x4 9.9-10.4 -> 8.6-8.9. Losses: 32 channels 16x16
// (batch 64) 1.12 -> 1.45, 16 channels 32x32 0.41 -> 0.64 (batch 16), 128 channels 32x32 about
// even, and every weight gradient (128 channels 4x4: 1.95 -> 2.42).
static const cpu_wino_kind *cpu_wino_pick(const cpu_wino_geo *g, int weight_grad) {
    int forced = __atomic_load_n(&cpu_wino_forced, __ATOMIC_RELAXED);
    if (forced < 0) { // first use: every thread that gets here reads the same environment
        const char *env = getenv("DIFFOOD_WINOGRAD");
        int want = env && (atoi(env) == 2 || atoi(env) == 4) ? atoi(env) : 0, unset = -1;
        __atomic_compare_exchange_n(&cpu_wino_forced, &unset, want, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        forced = __atomic_load_n(&cpu_wino_forced, __ATOMIC_RELAXED);
    }
    if (forced) return forced == 4 ? &cpu_wino_f4 : &cpu_wino_f2;
    int side = g->ho > g->wo ? g->ho : g->wo, c = g->c_in < g->c_out ? g->c_in : g->c_out;
    int f4 = !weight_grad && g->ho >= 3 && g->wo >= 3 && ((side <= 8 && c >= 64) || (side <= 16 && c >= 256));
    return f4 ? &cpu_wino_f4 : &cpu_wino_f2;
}

// The tile grid of geometry g for variant k.
static void cpu_wino_tiles(cpu_wino_geo *g, const cpu_wino_kind *k) {
    g->th = (g->ho + k->m - 1) / k->m;
    g->tw = (g->wo + k->m - 1) / k->m;
    g->tpi = g->th * g->tw;
}

// Images per chunk of `per_tile` floats per tile (CPU_WINO_CHUNK_BYTES above).
static int cpu_wino_chunk_images(int tpi, size_t per_tile) {
    size_t t = CPU_WINO_CHUNK_BYTES / (per_tile * sizeof(float));
    if (t < CPU_WINO_TILES_MIN) t = CPU_WINO_TILES_MIN;
    if (t > CPU_WINO_TILES_MAX) t = CPU_WINO_TILES_MAX;
    return (size_t)tpi >= t ? 1 : (int)(t / (size_t)tpi);
}

// Images per chunk and the threading way (as in cpu_conv.c): cpu_wino_chunk_images per chunk;
// in the outer way at least one chunk per thread, and the per-thread slices (fixed part
// `fixed` plus `per_tile` floats per tile of a chunk) within CPU_WINO_OUTER_MAX bytes in all,
// shrinking the chunks first and giving up the outer way last.
static void cpu_wino_plan(int n, int tpi, int nt, size_t fixed, size_t per_tile, int *nb_out, int *outer_out) {
    int nb = cpu_wino_chunk_images(tpi, per_tile);
    int outer = nt > 1 && n >= nt;
    if (outer && nb > n / nt) nb = n / nt;
    while (outer && nb > 1 && (fixed + per_tile * (size_t)nb * tpi) * sizeof(float) * nt > CPU_WINO_OUTER_MAX) nb /= 2;
    if (outer && (fixed + per_tile * (size_t)nb * tpi) * sizeof(float) * nt > CPU_WINO_OUTER_MAX) {
        outer = 0;
        nb = cpu_wino_chunk_images(tpi, per_tile);
    }
    if (nb > n) nb = n;
    *nb_out = nb;
    *outer_out = outer;
}

int cpu_winograd_usable(const ops_conv_shape *s, int bwd_data) {
    if (s->kh != 3 || s->kw != 3 || s->stride != 1 || s->c_in < 8 || s->c_out < 8) return 0;
    if (bwd_data && (s->pad_t > 2 || s->pad_l > 2 || s->pad_b > 2 || s->pad_r > 2)) return 0;
    return 1;
}

int cpu_winograd_conv(ops_ctx *ctx, const ops_conv_shape *s, float *y, const float *x, const float *w, const float *b,
                      int bwd_data) {
    cpu_wino_geo g;
    if (bwd_data) { // dx (N, C_in, H, W) += conv(dy, flipped w^T) with pads 2 - pad
        g = (cpu_wino_geo){s->c_out, s->c_in, ops_conv_out_h(s), ops_conv_out_w(s), s->h, s->w, 2 - s->pad_t,
                           2 - s->pad_l, 0, 0, 0};
    } else {
        g = (cpu_wino_geo){s->c_in, s->c_out, s->h, s->w, ops_conv_out_h(s), ops_conv_out_w(s), s->pad_t, s->pad_l,
                           0, 0, 0};
    }
    const cpu_wino_kind *k = cpu_wino_pick(&g, 0);
    cpu_wino_tiles(&g, k);
    int nt = cpu_threads(ctx), n = s->n, ne = k->ne;
    int nb, outer;
    cpu_wino_plan(n, g.tpi, nt, k->pad_floats(&g, 1), (size_t)ne * (g.c_in + g.c_out), &nb, &outer);
    size_t rows_n = k->pad_floats(&g, cpu_wino_group(&g, nb)); // padded plane of one thread
    int nchunks = (n + nb - 1) / nb;
    size_t ld_max = (size_t)nb * g.tpi, nu = (size_t)ne * g.c_in * g.c_out;
    size_t slice = (size_t)ne * ld_max * (g.c_in + g.c_out) + rows_n;
    float *buf = cpu_scratch(ctx, nu + slice * (outer ? nt : 1) + rows_n * nt);
    if (!buf) return err_prefix(ERR_NOMEM, bwd_data ? "conv2d_bwd_data: " : "conv2d_fwd: ");
    k->weights(w, buf, s->c_out, s->c_in, bwd_data, nt);
    const float *u = buf;
    size_t xs = (size_t)g.c_in * g.h * g.w, ys = (size_t)g.c_out * g.ho * g.wo, up = (size_t)g.c_out * g.c_in;
#pragma omp parallel for schedule(static) num_threads(nt) if (outer)
    for (int ck = 0; ck < nchunks; ck++) {
        int n0 = ck * nb, nbc = n - n0 < nb ? n - n0 : nb, it = outer ? 1 : nt;
        float *v = buf + nu + (outer ? (size_t)omp_get_thread_num() * slice : 0);
        size_t ld = (size_t)nbc * g.tpi;
        float *m = v + (size_t)ne * g.c_in * ld;
        // padded planes: this slice's own in the outer way, one per thread after the slices otherwise
        float *rows = outer ? m + (size_t)ne * g.c_out * ld_max : buf + nu + slice;
        k->input(&g, x + n0 * xs, v, nbc, ld, it, rows, 0);
#pragma omp parallel for schedule(static) num_threads(it) if (it > 1)
        for (int e = 0; e < ne; e++)
            cpu_sgemm(0, 0, g.c_out, (int)ld, g.c_in, 1.0f, u + e * up, g.c_in, v + (size_t)e * g.c_in * ld, (int)ld,
                      0.0f, m + (size_t)e * g.c_out * ld, (int)ld);
        k->output(&g, m, y + n0 * ys, b, nbc, ld, bwd_data, it);
    }
    return 0;
}

// --- weight gradient ----------------------------------------------------------------------------
// The adjoint of the forward: dM_e = (A dY A^T)_e per output tile (zeros past an odd edge),
// dU_e (C_out, C_in) += dM_e (C_out, T) V_e^T (T, C_in) by ne GEMMs, then dW += G^T dU G.

int cpu_winograd_bwd_weight(ops_ctx *ctx, const ops_conv_shape *s, float *dw, const float *dy, const float *x) {
    cpu_wino_geo g = {s->c_in, s->c_out, s->h, s->w, ops_conv_out_h(s), ops_conv_out_w(s), s->pad_t, s->pad_l, 0, 0, 0};
    const cpu_wino_kind *k = cpu_wino_pick(&g, 1);
    cpu_wino_tiles(&g, k);
    int nt = cpu_threads(ctx), n = s->n, ne = k->ne;
    // the output gradient's tiles: planes (C_out, HO, WO), no padding, the same tile grid
    cpu_wino_geo gd = {g.c_out, g.c_out, g.ho, g.wo, g.ho, g.wo, 0, 0, g.th, g.tw, g.tpi};
    size_t rows_n = k->pad_floats(&g, 1), rows_d = k->pad_floats(&gd, 1);
    if (rows_d > rows_n) rows_n = rows_d;
    size_t nu = (size_t)ne * g.c_in * g.c_out;
    int nb, outer;
    cpu_wino_plan(n, g.tpi, nt, nu + rows_n, (size_t)ne * (g.c_in + g.c_out), &nb, &outer);
    rows_n *= cpu_wino_group(&g, nb); // groups of nb images (chunks of fewer: smaller groups)
    int nchunks = (n + nb - 1) / nb, slices = outer ? nt : 1;
    size_t ld_max = (size_t)nb * g.tpi;
    // per slice: dU accumulator, V, dM, padded plane
    size_t slice = nu + (size_t)ne * ld_max * (g.c_in + g.c_out) + rows_n;
    float *buf = cpu_scratch(ctx, slice * slices + rows_n * nt);
    if (!buf) return err_prefix(ERR_NOMEM, "conv2d_bwd_weight: ");
    size_t xs = (size_t)g.c_in * g.h * g.w, ys = (size_t)g.c_out * g.ho * g.wo;
    for (int t = 0; t < slices; t++) memset(buf + (size_t)t * slice, 0, nu * sizeof(float));
#pragma omp parallel for schedule(static) num_threads(nt) if (outer)
    for (int ck = 0; ck < nchunks; ck++) {
        int n0 = ck * nb, nbc = n - n0 < nb ? n - n0 : nb, it = outer ? 1 : nt;
        float *du = buf + (outer ? (size_t)omp_get_thread_num() * slice : 0);
        size_t ld = (size_t)nbc * g.tpi;
        float *v = du + nu, *dm = v + (size_t)ne * g.c_in * ld;
        float *rows = outer ? dm + (size_t)ne * g.c_out * ld_max : buf + slice;
        k->input(&g, x + n0 * xs, v, nbc, ld, it, rows, 0);
        k->input(&gd, dy + n0 * ys, dm, nbc, ld, it, rows, 1);
#pragma omp parallel for schedule(static) num_threads(it) if (it > 1)
        for (int e = 0; e < ne; e++) // dU_e (C_out, C_in) += dM_e (C_out, T) V_e^T (T, C_in)
            cpu_sgemm(0, 1, g.c_out, g.c_in, (int)ld, 1.0f, dm + (size_t)e * g.c_out * ld, (int)ld,
                      v + (size_t)e * g.c_in * ld, (int)ld, 1.0f, du + (size_t)e * g.c_out * g.c_in, g.c_in);
    }
    if (slices > 1) { // thread partials into the first, in thread order
        int st = nu * slices >= CPU_PAR_WORK ? nt : 1;
#pragma omp parallel for simd schedule(static) num_threads(st) if(parallel: st > 1)
        for (size_t i = 0; i < nu; i++) {
            float acc = buf[i];
            for (int t = 1; t < slices; t++) acc += buf[(size_t)t * slice + i];
            buf[i] = acc;
        }
    }
    k->dweights(buf, dw, s->c_out, s->c_in, nt);
    return 0;
}
