// cpu_random: Philox-based randomness on the CPU (kernels/philox.h): standard normals and the
// inverted-dropout mask, element i of an op being element offset + i of the stream, so the
// numbers do not depend on how a tensor is split into calls, on threads, or on the backend.
#include "kernels/cpu/cpu_internal.h"

#include "common/err.h"

int cpu_randn(ops_ctx *ctx, float *y, size_t n, philox_key key, uint64_t offset) {
    if (!n) return 0;
    uint64_t b0 = offset >> 2, b1 = (offset + n - 1) >> 2; // counter blocks covered
    int64_t nblk = (int64_t)(b1 - b0 + 1);
    int nt = n >= 4096 ? cpu_threads(ctx) : 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t q = 0; q < nblk; q++) {
        uint64_t blk = b0 + (uint64_t)q;
        float z[4];
        philox_normal4(key, blk, z);
        for (int lane = 0; lane < 4; lane++) {
            uint64_t j = blk * 4 + (uint64_t)lane; // stream element
            if (j >= offset && j < offset + n) y[j - offset] = z[lane];
        }
    }
    return 0;
}

// Keep mask of element j: uniform (j) >= p.
static inline int cpu_dropout_keep(philox_key key, uint64_t j, float p) { return philox_uniform_at(key, j) >= p; }

int cpu_dropout_fwd(ops_ctx *ctx, float *y, const float *x, size_t n, float p, philox_key key, uint64_t offset) {
    ERR_IF(!(p >= 0.0f && p <= 1.0f), ERR_USAGE, "dropout_fwd: probability %g is outside [0, 1]", (double)p);
    float q = 1.0f - p;
    int nt = n >= 4096 ? cpu_threads(ctx) : 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t i = 0; i < n; i++) y[i] = (q > 0.0f && cpu_dropout_keep(key, offset + i, p)) ? x[i] / q : 0.0f;
    return 0;
}

int cpu_dropout_bwd(ops_ctx *ctx, float *dx, const float *dy, size_t n, float p, philox_key key, uint64_t offset) {
    ERR_IF(!(p >= 0.0f && p <= 1.0f), ERR_USAGE, "dropout_bwd: probability %g is outside [0, 1]", (double)p);
    float q = 1.0f - p;
    int nt = n >= 4096 ? cpu_threads(ctx) : 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t i = 0; i < n; i++)
        if (q > 0.0f && cpu_dropout_keep(key, offset + i, p)) dx[i] += dy[i] / q;
    return 0;
}
