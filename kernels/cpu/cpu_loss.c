// cpu_loss: the training losses on the CPU: summed-per-sample MSE (the denoiser's) and softmax
// cross-entropy (the classifier's). Sums run in double over fixed chunks of rows combined in
// order, so the loss does not depend on the thread count.
#include "kernels/cpu/cpu_internal.h"

#include "common/err.h"

int cpu_mse_sum_loss(ops_ctx *ctx, float *loss, float *dpred, const float *pred, const float *target, int n, int per) {
    ERR_IF(n <= 0 || per <= 0, ERR_USAGE, "mse_sum_loss: invalid shape n=%d per=%d (both must be > 0)", n, per);
    size_t total = (size_t)n * per, nch = (total + CPU_CHUNK - 1) / CPU_CHUNK;
    double *part = cpu_partial(ctx, nch);
    if (!part) return err_prefix(ERR_NOMEM, "mse_sum_loss: ");
    float g = 2.0f / (float)n;
    int nt = cpu_par_threads(ctx, total);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t q = 0; q < nch; q++) {
        size_t lo = q * CPU_CHUNK, hi = lo + CPU_CHUNK < total ? lo + CPU_CHUNK : total;
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) {
            float d = pred[i] - target[i];
            s += (double)d * d;
            if (dpred) dpred[i] = g * d;
        }
        part[q] = s;
    }
    double s = 0.0;
    for (size_t q = 0; q < nch; q++) s += part[q];
    loss[0] = (float)(s / n);
    return 0;
}

int cpu_softmax_xent_loss(ops_ctx *ctx, float *loss, float *dlogits, const float *logits, const int32_t *labels, int n,
                          int k) {
    ERR_IF(n <= 0 || k <= 0, ERR_USAGE, "softmax_xent_loss: invalid shape n=%d k=%d (both must be > 0)", n, k);
    for (int i = 0; i < n; i++)
        ERR_IF(labels[i] < 0 || labels[i] >= k, ERR_INPUT,
               "softmax_xent_loss: label %d of row %d is outside the %d classes", (int)labels[i], i, k);
    double *part = cpu_partial(ctx, (size_t)n);
    if (!part) return err_prefix(ERR_NOMEM, "softmax_xent_loss: ");
    int nt = cpu_par_threads(ctx, (size_t)n * k);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        float mx = z[0];
        for (int j = 1; j < k; j++) mx = fmaxf(mx, z[j]);
        double s = 0.0;
        for (int j = 0; j < k; j++) s += exp((double)z[j] - mx);
        part[i] = log(s) + mx - z[labels[i]];
        if (dlogits) {
            float *d = dlogits + (size_t)i * k;
            for (int j = 0; j < k; j++) d[j] = (float)(exp((double)z[j] - mx) / s) / (float)n;
            d[labels[i]] -= 1.0f / (float)n;
        }
    }
    double s = 0.0;
    for (int i = 0; i < n; i++) s += part[i];
    loss[0] = (float)(s / n);
    return 0;
}
