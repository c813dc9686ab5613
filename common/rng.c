// rng: stream keys from (seed, purpose, a, b, c) and the draws over them (see rng.h).
#include "common/rng.h"

#include <string.h>
#include <xxhash.h>

static const char *const rng_purpose_names[RNG_PURPOSE_COUNT] = {
#define RNG_PURPOSE_NAME(name, id, text) [id] = text,
    RNG_PURPOSE_LIST(RNG_PURPOSE_NAME)
#undef RNG_PURPOSE_NAME
};

#define RNG_MAGIC "diffood-rng-v1"
#define RNG_MAGIC_LEN 14

static void put_u64le(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

philox_key rng_stream(uint64_t seed, rng_purpose purpose, uint64_t a, uint64_t b, uint64_t c) {
    unsigned char buf[RNG_MAGIC_LEN + 5 * 8];
    _Static_assert(sizeof RNG_MAGIC - 1 == RNG_MAGIC_LEN, "magic length");
    memcpy(buf, RNG_MAGIC, RNG_MAGIC_LEN);
    uint64_t words[5] = {seed, (uint64_t)purpose, a, b, c};
    for (int i = 0; i < 5; i++) put_u64le(buf + RNG_MAGIC_LEN + 8 * i, words[i]);
    XXH128_hash_t h = XXH3_128bits(buf, sizeof buf);
    philox_key k = {(uint32_t)h.low64, (uint32_t)(h.low64 >> 32), (uint32_t)h.high64, (uint32_t)(h.high64 >> 32)};
    return k;
}

const char *rng_purpose_name(rng_purpose purpose) {
    if ((int)purpose < 0 || purpose >= RNG_PURPOSE_COUNT || !rng_purpose_names[purpose]) return "unknown";
    return rng_purpose_names[purpose];
}

uint64_t rng_id_str(const char *text) { return XXH3_64bits(text, strlen(text)); }

uint32_t rng_uniform_u32(philox_key key, uint64_t j) { return philox_block(key, j >> 2).v[j & 3]; }

double rng_uniform(philox_key key, uint64_t j) { return rng_uniform_u32(key, j) * (1.0 / 4294967296.0); }

float rng_normal(philox_key key, uint64_t j) { return philox_normal_at(key, j); }

uint32_t rng_randint(philox_key key, uint64_t j, uint32_t n) {
    if (n == 0) return 0;
    uint32_t threshold = (uint32_t)(-n) % n; // 2^32 mod n: the low words to reject
    for (uint32_t r = 0;; r++) {
        philox_key k = key;
        k.k1 += r * 0x9E3779B9u;
        uint64_t m = (uint64_t)rng_uniform_u32(k, j) * n;
        if ((uint32_t)m >= threshold) return (uint32_t)(m >> 32);
    }
}

void rng_fill_normal(philox_key key, uint64_t offset, float *out, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint64_t j = offset + i;
        float z[4];
        philox_normal4(key, j >> 2, z);
        for (unsigned lane = (unsigned)(j & 3); lane < 4 && i < n; lane++) out[i++] = z[lane];
    }
}

void rng_fill_uniform(philox_key key, uint64_t offset, float *out, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint64_t j = offset + i;
        philox_u4 b = philox_block(key, j >> 2);
        for (unsigned lane = (unsigned)(j & 3); lane < 4 && i < n; lane++) out[i++] = (float)philox_u01(b.v[lane]);
    }
}

void rng_shuffle(philox_key key, uint32_t *perm, uint32_t n) {
    for (uint32_t i = n; i-- > 1;) {
        uint32_t j = rng_randint(key, i, i + 1);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void rng_permutation(philox_key key, uint32_t *perm, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    rng_shuffle(key, perm, n);
}
