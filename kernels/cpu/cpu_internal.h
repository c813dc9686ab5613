// cpu_internal: what the files of the CPU backend share (kernels/cpu/): the per-context state
// (thread count, reusable scratch buffers), thread helpers, fast vectorisable math, and the
// declarations of every op implementation (cpu_NAME, one per OPS_LIST entry, filled into the
// table by cpu_backend.c). Not a public header: only kernels/cpu/ and its tests include it.
//
// Threading: every OpenMP region names its thread count (cpu_threads, or cpu_par_threads for an
// op whose work may be too small to share). GEMMs go through cpu_sgemm.h; OpenBLAS (only a
// batched GEMM with both operands transposed) is set to the region's count first (cpu_blas_set)
// and never called from inside a parallel region with more than one thread. A context is used
// by one thread at a time (the same rule as for every ops_ctx).
#ifndef DIFFOOD_CPU_INTERNAL_H
#define DIFFOOD_CPU_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/backend.h"

// Per-context state, created on first use and freed by ops_ctx_destroy (through ctx->fini).
typedef struct {
    int threads;       // resolved thread count (>= 1)
    float *scratch;    // im2col / column buffer, grown rarely (aligned)
    size_t scratch_n;  // its capacity in floats
    double *partial;   // per-chunk / per-(n, c) reduction partials, grown rarely (aligned)
    size_t partial_n;  // its capacity in doubles
} cpu_state;

// The context's state, created on first call (NULL only when out of memory).
cpu_state *cpu_state_get(ops_ctx *ctx);
// Threads to use for OpenMP regions of `ctx` (>= 1).
int cpu_threads(ops_ctx *ctx);
// Sets OpenBLAS's thread count to `t` (1 before calling sgemm inside an OpenMP region).
void cpu_blas_set(ops_ctx *ctx, int t);
// A scratch buffer of at least `n` floats (content undefined) or NULL with ERR_NOMEM set.
// Valid until the next cpu_scratch call on the same context. Owned by the context.
float *cpu_scratch(ops_ctx *ctx, size_t n);
// A buffer of at least `n` doubles (content undefined), or NULL with ERR_NOMEM set; separate
// from cpu_scratch so that both can be held at once. Owned by the context.
double *cpu_partial(ops_ctx *ctx, size_t n);

// Work (about the floats an op reads and writes) below which it runs on one thread: starting a
// parallel region wakes the other threads, which sleep after a short spin (GOMP_SPINCOUNT=300,
// common/threads.h): 10-20 us on a VM, the time one thread takes for this much work. A step of
// the fmnist UNet ran ~570 regions of 14-45 us; most forked for less work than this.
#ifndef CPU_PAR_WORK
#define CPU_PAR_WORK ((size_t)1 << 17)
#endif
// The threads for an op of `work` (see CPU_PAR_WORK): all of the context's, or one.
static inline int cpu_par_threads(ops_ctx *ctx, size_t work) {
    return work >= CPU_PAR_WORK ? cpu_threads(ctx) : 1;
}

// Reductions split into chunks of this many elements whatever the thread count, combined in
// chunk order: results do not depend on threads at all.
#define CPU_CHUNK 8192

// --- fast math: vectorisable exp and activations ----------------------------------------------

// Clamp bounds of cpu_expf, defined in cpu_backend.c. They are opaque on purpose: when GCC can
// see constant bounds it threads the clamped paths into constant-folded branches (one of which
// overflows, "could trap") and then refuses to vectorise the loop.
extern const float cpu_exp_lo, cpu_exp_hi;

// exp(x) for float, Cephes-style range reduction and degree-6 polynomial (relative error below
// 1e-7 over the normal range), branch-free so that GCC vectorises loops over it. Saturates to
// +inf above ~88.7 and to (subnormal) 0 below ~-103, like expf.
static inline float cpu_expf(float x) {
    x = x < cpu_exp_lo ? cpu_exp_lo : x;
    x = x > cpu_exp_hi ? cpu_exp_hi : x; // above ~88.7 the result overflows to +inf
    float t = x * 1.44269504088896341f + 0.5f;
    int ni = (int)t;
    ni -= t < (float)ni; // floor
    float n = (float)ni;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    // 2^n in two steps so that n down to -150 (subnormal results) stays exact enough
    int n1 = ni >> 1, n2 = ni - n1;
    uint32_t u1 = (uint32_t)(n1 + 127) << 23, u2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2; // bit casts through memcpy: GCC vectorises these, unlike a union
    memcpy(&s1, &u1, sizeof s1);
    memcpy(&s2, &u2, sizeof s2);
    return p * s1 * s2;
}

static inline float cpu_sigmoidf(float x) { return 1.0f / (1.0f + cpu_expf(-x)); }

// act(z)
static inline float cpu_act(ops_act act, float z) {
    if (act == OPS_ACT_RELU) return z > 0.0f ? z : 0.0f;
    if (act == OPS_ACT_SWISH) return z * cpu_sigmoidf(z);
    return z;
}
// act'(z)
static inline float cpu_act_grad(ops_act act, float z) {
    if (act == OPS_ACT_RELU) return z > 0.0f ? 1.0f : 0.0f;
    if (act == OPS_ACT_SWISH) {
        float s = cpu_sigmoidf(z);
        return s * (1.0f + z * (1.0f - s));
    }
    return 1.0f;
}
// Sum of x and sum of (x - m)^2: float SIMD over blocks of 512, blocks added in double, in
// order (fast, accurate to about 1e-7 relative, independent of threads).
#define CPU_NORM_BLOCK 512
static inline double cpu_sum_f(const float *x, size_t n) {
    double s = 0.0;
    for (size_t b = 0; b < n; b += CPU_NORM_BLOCK) {
        size_t e = b + CPU_NORM_BLOCK < n ? b + CPU_NORM_BLOCK : n;
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (size_t i = b; i < e; i++) part += x[i];
        s += part;
    }
    return s;
}
static inline double cpu_sumsq_dev_f(const float *x, size_t n, float m) {
    double s = 0.0;
    for (size_t b = 0; b < n; b += CPU_NORM_BLOCK) {
        size_t e = b + CPU_NORM_BLOCK < n ? b + CPU_NORM_BLOCK : n;
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (size_t i = b; i < e; i++) part += (x[i] - m) * (x[i] - m);
        s += part;
    }
    return s;
}

// y[i] = act(y[i]) over a row (vectorisable per activation)
void cpu_act_row(ops_act act, float *y, size_t n);

// Checks an activation code; ERR_USAGE naming `op` when out of range.
int cpu_check_act(const char *op, ops_act act);

// --- the op implementations ---------------------------------------------------------------------
#define CPU_DECLARE(op, params, args) int cpu_##op params;
OPS_LIST(CPU_DECLARE)
#undef CPU_DECLARE

#endif
