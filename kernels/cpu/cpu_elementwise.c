// cpu_elementwise: fill, add, scale, axpy, axpby (per row too) and the activations (forward and backward) on
// the CPU: OpenMP over the elements (static schedule), vectorisable inner loops.
#include "kernels/cpu/cpu_internal.h"

#include "common/err.h"

// Loop body `stmt` over i in [0, n), threaded when large.
#define CPU_FOR(ctx, n, stmt)                                                                  \
    do {                                                                                       \
        size_t n_ = (n);                                                                       \
        int nt_ = cpu_par_threads(ctx, n_);                                                    \
        _Pragma("omp parallel for simd schedule(static) num_threads(nt_) if(parallel: nt_ > 1)")         \
        for (size_t i = 0; i < n_; i++) { stmt; }                                              \
    } while (0)

int cpu_fill(ops_ctx *ctx, float *y, float v, size_t n) {
    CPU_FOR(ctx, n, y[i] = v);
    return 0;
}

int cpu_add(ops_ctx *ctx, float *y, const float *a, const float *b, size_t n) {
    CPU_FOR(ctx, n, y[i] = a[i] + b[i]);
    return 0;
}

int cpu_scale(ops_ctx *ctx, float *y, float alpha, size_t n) {
    CPU_FOR(ctx, n, y[i] = alpha * y[i]);
    return 0;
}

int cpu_axpy(ops_ctx *ctx, float *y, float alpha, const float *x, size_t n) {
    CPU_FOR(ctx, n, y[i] += alpha * x[i]);
    return 0;
}

int cpu_axpby(ops_ctx *ctx, float *y, float a, const float *x, float b, const float *z, size_t n) {
    CPU_FOR(ctx, n, y[i] = a * x[i] + b * z[i]);
    return 0;
}

int cpu_axpby_rows(ops_ctx *ctx, float *y, const float *a, const float *x, const float *b, const float *z, int rows,
                   size_t per) {
    if (rows < 0) return err_set(ERR_USAGE, "axpby_rows: negative row count %d", rows);
    for (int r = 0; r < rows; r++) {
        size_t o = (size_t)r * per;
        cpu_axpby(ctx, y + o, a[r], x + o, b[r], z + o, per);
    }
    return 0;
}

void cpu_act_row(ops_act act, float *y, size_t n) {
    if (act == OPS_ACT_RELU) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
    } else if (act == OPS_ACT_SWISH) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) y[i] = y[i] / (1.0f + cpu_expf(-y[i]));
    }
}

int cpu_act_fwd(ops_ctx *ctx, ops_act act, float *y, const float *x, size_t n) {
    ERR_TRY(cpu_check_act("act_fwd", act));
    switch (act) {
    case OPS_ACT_RELU: CPU_FOR(ctx, n, y[i] = x[i] > 0.0f ? x[i] : 0.0f); break;
    case OPS_ACT_SWISH: CPU_FOR(ctx, n, y[i] = x[i] / (1.0f + cpu_expf(-x[i]))); break;
    default:
        if (y != x) CPU_FOR(ctx, n, y[i] = x[i]);
        break;
    }
    return 0;
}

int cpu_act_bwd(ops_ctx *ctx, ops_act act, float *dx, const float *dy, const float *x, size_t n) {
    ERR_TRY(cpu_check_act("act_bwd", act));
    switch (act) {
    case OPS_ACT_RELU: CPU_FOR(ctx, n, dx[i] += x[i] > 0.0f ? dy[i] : 0.0f); break;
    case OPS_ACT_SWISH:
        CPU_FOR(ctx, n, {
            float s = 1.0f / (1.0f + cpu_expf(-x[i]));
            dx[i] += dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
        });
        break;
    default: CPU_FOR(ctx, n, dx[i] += dy[i]); break;
    }
    return 0;
}
