// cpu_optim: the optimiser steps on flat parameter arenas (PyTorch's AdamW and SGD update
// formulas in PyTorch's operation order), the exponential moving average of weights, and the
// sum of squares for the global gradient norm (double, fixed chunks combined in order).
#include "kernels/cpu/cpu_internal.h"

#include "common/err.h"

#define CPU_OPT_PAR 32768

int cpu_sumsq(ops_ctx *ctx, float *out, const float *x, size_t n) {
    size_t nch = (n + CPU_CHUNK - 1) / CPU_CHUNK;
    double *part = cpu_partial(ctx, nch ? nch : 1);
    if (!part) return err_prefix(ERR_NOMEM, "sumsq: ");
    int nt = n >= CPU_OPT_PAR ? cpu_threads(ctx) : 1;
#pragma omp parallel for schedule(static) num_threads(nt) if(parallel: nt > 1)
    for (size_t q = 0; q < nch; q++) {
        size_t lo = q * CPU_CHUNK, hi = lo + CPU_CHUNK < n ? lo + CPU_CHUNK : n;
        // 8 double lanes (vectorisable as 2 x 4), combined in a fixed order
        double acc[8] = {0};
        size_t i = lo;
        for (; i + 8 <= hi; i += 8)
            for (int l = 0; l < 8; l++) acc[l] += (double)x[i + l] * x[i + l];
        for (; i < hi; i++) acc[0] += (double)x[i] * x[i];
        part[q] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    }
    double s = 0.0;
    for (size_t q = 0; q < nch; q++) s += part[q];
    out[0] = (float)s;
    return 0;
}

int cpu_adamw(ops_ctx *ctx, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
              float eps, float wd, int step) {
    ERR_IF(step < 1, ERR_USAGE, "adamw: step %d must be >= 1 (1-based)", step);
    // scalars as torch.optim.AdamW (_single_tensor_adamw) computes them, in double
    float decay = (float)(1.0 - (double)lr * wd);
    float b1 = beta1, ob1 = (float)(1.0 - beta1), b2 = beta2, ob2 = (float)(1.0 - beta2);
    double bc1 = 1.0 - pow(beta1, step), bc2 = 1.0 - pow(beta2, step);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    int nt = n >= CPU_OPT_PAR ? cpu_threads(ctx) : 1;
#pragma omp parallel for simd schedule(static) num_threads(nt) if(parallel: nt > 1)
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] * decay;                  // param.mul_(1 - lr * wd)
        float mi = m[i] * b1 + ob1 * g[i];        // exp_avg.mul_(b1).add_(g, alpha=1-b1)
        float vi = v[i] * b2 + ob2 * g[i] * g[i]; // exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2)
        float denom = sqrtf(vi) / bc2_sqrt + eps; // (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
        p[i] = pi + (-step_size) * mi / denom;    // param.addcdiv_(exp_avg, denom, value=-step_size)
        m[i] = mi;
        v[i] = vi;
    }
    return 0;
}

int cpu_sgd(ops_ctx *ctx, float *p, const float *g, float *buf, size_t n, float lr, float momentum, float wd, int nesterov) {
    ERR_IF(momentum != 0.0f && !buf, ERR_USAGE, "sgd: momentum %g needs a momentum buffer", (double)momentum);
    ERR_IF(nesterov && momentum <= 0.0f, ERR_USAGE, "sgd: Nesterov momentum needs momentum > 0 (got %g)", (double)momentum);
    int nt = n >= CPU_OPT_PAR ? cpu_threads(ctx) : 1;
#pragma omp parallel for simd schedule(static) num_threads(nt) if(parallel: nt > 1)
    for (size_t i = 0; i < n; i++) {
        float d = g[i];
        if (wd != 0.0f) d = d + wd * p[i]; // d_p = d_p.add(param, alpha=wd)
        if (momentum != 0.0f) {
            float b = buf[i] * momentum + d; // buf.mul_(momentum).add_(d_p)
            buf[i] = b;
            d = nesterov ? d + momentum * b : b; // d_p.add(buf, alpha=momentum) or buf
        }
        p[i] = p[i] + (-lr) * d; // param.add_(d_p, alpha=-lr)
    }
    return 0;
}

int cpu_ema(ops_ctx *ctx, float *ema, const float *p, size_t n, float decay) {
    float od = 1.0f - decay;
    int nt = n >= CPU_OPT_PAR ? cpu_threads(ctx) : 1;
#pragma omp parallel for simd schedule(static) num_threads(nt) if(parallel: nt > 1)
    for (size_t i = 0; i < n; i++) ema[i] = decay * ema[i] + od * p[i];
    return 0;
}
