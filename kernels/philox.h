// philox: the Philox4x32-10 counter-based generator (Salmon et al., SC'11), header-only so that
// the CPU backend, the CUDA kernels and common/rng.h compute the same numbers.
//
// A stream is a philox_key: two key words and two fixed counter words (c2, c3); element j of the
// stream lives in counter block j / 4 (words c0 = low 32 bits, c1 = high 32 bits of the block)
// at lane j % 4. Normals come from Box-Muller on lane pairs (0,1) and (2,3), computed in double
// so that host and device agree after rounding to float. Nothing here allocates or fails.
#ifndef DIFFOOD_PHILOX_H
#define DIFFOOD_PHILOX_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define PHILOX_HD __host__ __device__ __forceinline__
#else
#define PHILOX_HD static inline
#endif

typedef struct {
    uint32_t k0, k1; // Philox key
    uint32_t c2, c3; // upper counter words: part of the stream's identity
} philox_key;

typedef struct {
    uint32_t v[4];
} philox_u4;

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

// One Philox4x32-10 block: 10 rounds on counter (c0, c1, c2, c3) with key (k0, k1).
PHILOX_HD philox_u4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    philox_u4 out = {{c0, c1, c2, c3}};
    return out;
}

// The four 32-bit words of counter block `block` of stream `key`.
PHILOX_HD philox_u4 philox_block(philox_key key, uint64_t block) {
    return philox4x32_10((uint32_t)block, (uint32_t)(block >> 32), key.c2, key.c3, key.k0, key.k1);
}

// A 32-bit word as a uniform double strictly inside (0, 1).
PHILOX_HD double philox_u01(uint32_t x) { return ((double)x + 0.5) * (1.0 / 4294967296.0); }

// Uniform element j of the stream, in (0, 1] (the double in (0, 1) rounds to 1.0f for the top
// 128 words): compare with `u >= p` / `u < p` so the endpoint never matters.
PHILOX_HD float philox_uniform_at(philox_key key, uint64_t j) {
    philox_u4 b = philox_block(key, j >> 2);
    return (float)philox_u01(b.v[j & 3]);
}

// Four standard normals of block `block` (Box-Muller on lanes (0,1) and (2,3)).
PHILOX_HD void philox_normal4(philox_key key, uint64_t block, float out[4]) {
    philox_u4 b = philox_block(key, block);
    const double two_pi = 6.283185307179586476925286766559;
    for (int i = 0; i < 4; i += 2) {
        double r = sqrt(-2.0 * log(philox_u01(b.v[i])));
        double a = two_pi * philox_u01(b.v[i + 1]);
        out[i] = (float)(r * cos(a));
        out[i + 1] = (float)(r * sin(a));
    }
}

// Standard normal element j of the stream.
PHILOX_HD float philox_normal_at(philox_key key, uint64_t j) {
    float z[4];
    philox_normal4(key, j >> 2, z);
    return z[j & 3];
}

#endif
