// bn_merge: Chan's combination of sync BatchNorm's per-slice statistics for one channel,
// header-only (as kernels/philox.h) so that the CPU backend and the CUDA kernel
// (ops_batchnorm_stats_merge, kernels/ops.h) compute the same numbers. Nothing here fails.
#ifndef DIFFOOD_BN_MERGE_H
#define DIFFOOD_BN_MERGE_H

#include <math.h>
#include <stddef.h>

#ifdef __CUDACC__
#define BN_MERGE_HD __host__ __device__ __forceinline__
#else
#define BN_MERGE_HD static inline
#endif

// Channel ch of r slices' parts (r, 2, C): (mean, M2) of counts[s] values each, total values in
// all, merged in slice order (in double) into mean, var (biased; may be NULL) and rstd =
// 1 / sqrt(var + eps), and the running statistics (NULL: not kept) moved by momentum towards the
// batch's mean and unbiased variance.
BN_MERGE_HD void bn_merge_chan(const float *parts, const int *counts, int r, int c, int ch, double total,
                               float momentum, float eps, float *mean, float *var, float *rstd, float *running_mean,
                               float *running_var) {
    double na = 0.0, ma = 0.0, m2 = 0.0;
    for (int s = 0; s < r; s++) {
        const float *p = parts + (size_t)s * 2 * c;
        double nb = counts[s], nt = na + nb, d = (double)p[ch] - ma;
        ma += d * nb / nt;
        m2 += (double)p[c + ch] + d * d * na * nb / nt;
        na = nt;
    }
    float vf = (float)(m2 / total), m = (float)ma;
    mean[ch] = m;
    if (var) var[ch] = vf;
    rstd[ch] = (float)(1.0 / sqrt((double)vf + (double)eps));
    if (running_mean) running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * m;
    if (running_var) running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * (float)(m2 / (total - 1.0));
}

#endif
