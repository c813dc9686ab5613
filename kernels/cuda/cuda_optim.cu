// cuda_optim: the optimiser steps on flat parameter arenas, elementwise with the CPU backend's
// formulas and operation order (PyTorch's AdamW and SGD), and the weights' EMA. The scalar
// factors (bias corrections) are computed on the host in double, as on the CPU.
#include <math.h>

#include "kernels/cuda/cuda_internal.h"

__global__ void cuda_adamw_k(float *p, const float *g, float *m, float *v, size_t n, float decay, float b1, float ob1,
                             float b2, float ob2, float eps, float step_size, float bc2_sqrt) {
    CUDA_GRID_STRIDE(i, n) {
        float gi = g[i];
        float pi = p[i] * decay;                  // param.mul_(1 - lr * wd)
        float mi = m[i] * b1 + ob1 * gi;          // exp_avg.mul_(b1).add_(g, alpha=1-b1)
        float vi = v[i] * b2 + ob2 * gi * gi;     // exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2)
        float denom = sqrtf(vi) / bc2_sqrt + eps; // (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
        p[i] = pi + (-step_size) * mi / denom;    // param.addcdiv_(exp_avg, denom, value=-step_size)
        m[i] = mi;
        v[i] = vi;
    }
}

int cuda_adamw(ops_ctx *ctx, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
               float eps, float wd, int step) {
    CUDA_SHAPE_IF(step < 1, "adamw: step %d must be >= 1 (1-based)", step);
    if (!n) return 0;
    float decay = (float)(1.0 - (double)lr * wd);
    double bc1 = 1.0 - pow(beta1, step), bc2 = 1.0 - pow(beta2, step);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    cuda_adamw_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(
        p, g, m, v, n, decay, beta1, (float)(1.0 - beta1), beta2, (float)(1.0 - beta2), eps, step_size, bc2_sqrt);
    CUDA_LAUNCHED("cuda_adamw_k");
    return 0;
}

__global__ void cuda_sgd_k(float *p, const float *g, float *buf, size_t n, float lr, float momentum, float wd,
                           int nesterov) {
    CUDA_GRID_STRIDE(i, n) {
        float d = g[i];
        if (wd != 0.0f) d = d + wd * p[i]; // d_p = d_p.add(param, alpha=wd)
        if (momentum != 0.0f) {
            float b = buf[i] * momentum + d; // buf.mul_(momentum).add_(d_p)
            buf[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        p[i] = p[i] + (-lr) * d; // param.add_(d_p, alpha=-lr)
    }
}

int cuda_sgd(ops_ctx *ctx, float *p, const float *g, float *buf, size_t n, float lr, float momentum, float wd,
             int nesterov) {
    CUDA_SHAPE_IF(momentum != 0.0f && !buf, "sgd: momentum %g needs a momentum buffer", (double)momentum);
    CUDA_SHAPE_IF(nesterov && momentum <= 0.0f, "sgd: Nesterov momentum needs momentum > 0 (got %g)", (double)momentum);
    if (!n) return 0;
    cuda_sgd_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(p, g, buf, n, lr, momentum, wd, nesterov);
    CUDA_LAUNCHED("cuda_sgd_k");
    return 0;
}

__global__ void cuda_ema_k(float *ema, const float *p, size_t n, float decay, float od) {
    CUDA_GRID_STRIDE(i, n) ema[i] = decay * ema[i] + od * p[i];
}

int cuda_ema(ops_ctx *ctx, float *ema, const float *p, size_t n, float decay) {
    if (!n) return 0;
    cuda_ema_k<<<cuda_blocks(n), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(ema, p, n, decay, 1.0f - decay);
    CUDA_LAUNCHED("cuda_ema_k");
    return 0;
}
