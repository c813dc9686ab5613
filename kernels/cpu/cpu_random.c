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

// Runs STMT for every element i of [0, n) with `keep` = whether stream element offset + i survives
// dropout with probability p: one Philox block per 4 elements, blocks split over threads.
#define CPU_DROPOUT_LOOP(ctx, n, p, key, offset, STMT)                                           \
    do {                                                                                         \
        if (!(n)) break;                                                                         \
        uint64_t b0_ = (offset) >> 2, b1_ = ((offset) + (n)-1) >> 2;                             \
        int64_t nblk_ = (int64_t)(b1_ - b0_ + 1);                                                \
        int nt_ = (n) >= 4096 ? cpu_threads(ctx) : 1;                                            \
        _Pragma("omp parallel for schedule(static) num_threads(nt_) if (nt_ > 1)")               \
        for (int64_t q_ = 0; q_ < nblk_; q_++) {                                                 \
            uint64_t blk_ = b0_ + (uint64_t)q_;                                                  \
            philox_u4 r_ = philox_block((key), blk_);                                            \
            for (int lane_ = 0; lane_ < 4; lane_++) {                                            \
                uint64_t j_ = blk_ * 4 + (uint64_t)lane_;                                        \
                if (j_ < (offset) || j_ >= (offset) + (n)) continue;                             \
                size_t i = (size_t)(j_ - (offset));                                              \
                int keep = (float)philox_u01(r_.v[lane_]) >= (p); /* = philox_uniform_at(j) */   \
                STMT;                                                                            \
            }                                                                                    \
        }                                                                                        \
    } while (0)

int cpu_dropout_fwd(ops_ctx *ctx, float *y, const float *x, size_t n, float p, philox_key key, uint64_t offset) {
    ERR_IF(!(p >= 0.0f && p <= 1.0f), ERR_USAGE, "dropout_fwd: probability %g is outside [0, 1]", (double)p);
    float q = 1.0f - p;
    CPU_DROPOUT_LOOP(ctx, n, p, key, offset, y[i] = (q > 0.0f && keep) ? x[i] / q : 0.0f);
    return 0;
}

int cpu_dropout_bwd(ops_ctx *ctx, float *dx, const float *dy, size_t n, float p, philox_key key, uint64_t offset) {
    ERR_IF(!(p >= 0.0f && p <= 1.0f), ERR_USAGE, "dropout_bwd: probability %g is outside [0, 1]", (double)p);
    float q = 1.0f - p;
    CPU_DROPOUT_LOOP(ctx, n, p, key, offset, if (q > 0.0f && keep) dx[i] += dy[i] / q);
    return 0;
}
