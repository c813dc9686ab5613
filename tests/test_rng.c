// Tests of the Philox engine (kernels/philox.h) against the Random123 known-answer vectors, and
// of the addressed streams (common/rng.h): the frozen key derivation, independence of streams,
// normal/uniform moments, chunk invariance, unbiased randint and shuffles.
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/rng.h"
#include "kernels/philox.h"

// --- the engine ----------------------------------------------------------------------------

START_TEST(test_philox_kat) {
    // Random123 kat_vectors, philox4x32 with 10 rounds
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e,
         0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
         0x5001e420, 0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        const uint32_t *k = kat[i];
        philox_u4 r = philox4x32_10(k[0], k[1], k[2], k[3], k[4], k[5]);
        for (int w = 0; w < 4; w++)
            ck_assert_msg(r.v[w] == k[6 + w], "vector %d word %d: %08x != %08x", i, w, r.v[w], k[6 + w]);
        // the same block through the stream addressing: block = c0 | c1 << 32 (element j = 4 block +
        // lane is 64-bit, so only blocks below 2^62 are addressable)
        philox_key key = {k[4], k[5], k[2], k[3]};
        uint64_t block = (uint64_t)k[0] | (uint64_t)k[1] << 32;
        for (int w = 0; w < 4; w++) ck_assert_uint_eq(philox_block(key, block).v[w], k[6 + w]);
        if (block >> 62) continue;
        for (int w = 0; w < 4; w++) ck_assert_uint_eq(rng_uniform_u32(key, block * 4 + (uint64_t)w), k[6 + w]);
    }
}
END_TEST

// --- stream keys ---------------------------------------------------------------------------

START_TEST(test_stream_derivation) {
    // the documented derivation, recomputed here
    const uint64_t seed = 1234, a = 0xdeadbeefcafef00dull, b = 17, c = 3;
    unsigned char buf[14 + 40];
    memcpy(buf, "diffood-rng-v1", 14);
    const uint64_t words[5] = {seed, RNG_NOISE_SAMPLE, a, b, c};
    for (int w = 0; w < 5; w++)
        for (int i = 0; i < 8; i++) buf[14 + 8 * w + i] = (unsigned char)(words[w] >> (8 * i));
    XXH128_hash_t h = XXH3_128bits(buf, sizeof buf);
    philox_key k = rng_stream(seed, RNG_NOISE_SAMPLE, a, b, c);
    ck_assert_uint_eq(k.k0, (uint32_t)h.low64);
    ck_assert_uint_eq(k.k1, (uint32_t)(h.low64 >> 32));
    ck_assert_uint_eq(k.c2, (uint32_t)h.high64);
    ck_assert_uint_eq(k.c3, (uint32_t)(h.high64 >> 32));
    // pinned: a change of the derivation changes every cached sample
    philox_key z = rng_stream(0, RNG_NOISE_SAMPLE, 0, 0, 0);
    ck_assert_uint_eq(z.k0, 0x19ff8d62u);
    ck_assert_uint_eq(z.k1, 0xa80065e6u);
    ck_assert_uint_eq(z.c2, 0x0d3aa0fau);
    ck_assert_uint_eq(z.c3, 0xfe2c3f66u);
    ck_assert_str_eq(rng_purpose_name(RNG_NOISE_SAMPLE), "noise_sample");
    ck_assert_str_eq(rng_purpose_name(RNG_SPLIT), "split");
    ck_assert_str_eq(rng_purpose_name((rng_purpose)0), "unknown");
    ck_assert_str_eq(rng_purpose_name(RNG_PURPOSE_COUNT), "unknown");
    ck_assert_uint_eq(rng_id_str("mnist"), XXH3_64bits("mnist", 5));
    ck_assert_uint_ne(rng_id_str("mnist"), rng_id_str("fashion_mnist"));
}
END_TEST

static bool same_key(philox_key x, philox_key y) {
    return x.k0 == y.k0 && x.k1 == y.k1 && x.c2 == y.c2 && x.c3 == y.c3;
}

START_TEST(test_streams_independent) {
    philox_key base = rng_stream(7, RNG_NOISE_SAMPLE, 11, 22, 33);
    ck_assert(same_key(base, rng_stream(7, RNG_NOISE_SAMPLE, 11, 22, 33))); // deterministic
    philox_key others[] = {
        rng_stream(8, RNG_NOISE_SAMPLE, 11, 22, 33), rng_stream(7, RNG_TRAIN_NOISE, 11, 22, 33),
        rng_stream(7, RNG_NOISE_SAMPLE, 12, 22, 33), rng_stream(7, RNG_NOISE_SAMPLE, 11, 23, 33),
        rng_stream(7, RNG_NOISE_SAMPLE, 11, 22, 34), rng_stream(7, RNG_NOISE_SAMPLE, 22, 11, 33),
    };
    float zb[64], zo[64];
    rng_fill_normal(base, 0, zb, 64);
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        ck_assert(!same_key(base, others[i]));
        rng_fill_normal(others[i], 0, zo, 64);
        int equal = 0;
        double dot = 0;
        for (int j = 0; j < 64; j++) {
            equal += zb[j] == zo[j];
            dot += (double)zb[j] * zo[j];
        }
        ck_assert_int_eq(equal, 0);
        ck_assert_msg(fabs(dot / 64) < 0.5, "stream %zu correlates: %g", i, dot / 64);
    }
    // elements within a stream differ too
    ck_assert(zb[0] != zb[1] && zb[1] != zb[2] && zb[3] != zb[4]);
}
END_TEST

// --- draws ---------------------------------------------------------------------------------

START_TEST(test_normal_moments) {
    const size_t n = 1000000;
    float *z = malloc(n * sizeof *z);
    ck_assert_ptr_nonnull(z);
    rng_fill_normal(rng_stream(42, RNG_TEST, 1, 0, 0), 0, z, n);
    double s1 = 0, s2 = 0, s4 = 0;
    size_t tail = 0;
    for (size_t i = 0; i < n; i++) {
        double v = z[i];
        s1 += v;
        s2 += v * v;
        s4 += v * v * v * v;
        tail += fabs(v) > 1.959964;
    }
    double mean = s1 / n, var = s2 / n - mean * mean, kurt = s4 / n;
    // standard errors: mean 0.001, variance 0.0014, 4th moment 0.01, tail fraction 0.0002
    ck_assert_msg(fabs(mean) < 0.005, "mean %g", mean);
    ck_assert_msg(fabs(var - 1) < 0.007, "variance %g", var);
    ck_assert_msg(fabs(kurt - 3) < 0.05, "fourth moment %g", kurt);
    ck_assert_msg(fabs((double)tail / n - 0.05) < 0.001, "tail fraction %g", (double)tail / n);
    free(z);
    // uniforms: [0, 1), mean 1/2, variance 1/12
    philox_key k = rng_stream(42, RNG_TEST, 2, 0, 0);
    double u1 = 0, u2 = 0;
    for (uint64_t j = 0; j < n; j++) {
        double u = rng_uniform(k, j);
        ck_assert(u >= 0 && u < 1);
        u1 += u;
        u2 += u * u;
    }
    ck_assert_msg(fabs(u1 / n - 0.5) < 0.0015, "uniform mean %g", u1 / n);
    ck_assert_msg(fabs(u2 / n - u1 * u1 / ((double)n * n) - 1.0 / 12) < 0.001, "uniform variance");
}
END_TEST

START_TEST(test_chunk_invariance) {
    philox_key k = rng_stream(5, RNG_NOISE_SAMPLE, 9, 8, 7);
    enum { N = 1001, OFF = 3 };
    float whole[N], parts[N], uw[N], up[N];
    rng_fill_normal(k, OFF, whole, N);
    rng_fill_uniform(k, OFF, uw, N);
    size_t i = 0, step = 1;
    while (i < N) { // chunks of 1, 2, 3, ... starting at unaligned offsets
        size_t m = step < N - i ? step : N - i;
        rng_fill_normal(k, OFF + i, parts + i, m);
        rng_fill_uniform(k, OFF + i, up + i, m);
        i += m;
        step++;
    }
    for (size_t j = 0; j < N; j++) {
        ck_assert_msg(memcmp(&whole[j], &parts[j], sizeof(float)) == 0, "element %zu differs", j);
        ck_assert(memcmp(&uw[j], &up[j], sizeof(float)) == 0);
        float one = rng_normal(k, OFF + j);
        ck_assert(memcmp(&whole[j], &one, sizeof(float)) == 0);
        ck_assert(uw[j] == philox_uniform_at(k, OFF + j));
    }
    // element j of a reversed, scattered fill order is still element j
    float back[16];
    for (int j = 15; j >= 0; j--) rng_fill_normal(k, OFF + (uint64_t)j, &back[j], 1);
    ck_assert(memcmp(back, whole, sizeof back) == 0);
}
END_TEST

START_TEST(test_randint) {
    philox_key k = rng_stream(1, RNG_TEST, 3, 0, 0);
    ck_assert_uint_eq(rng_randint(k, 5, 0), 0);
    ck_assert_uint_eq(rng_randint(k, 5, 1), 0);
    // six faces: chi-square with 5 degrees of freedom below its 0.999 quantile (20.5)
    enum { DRAWS = 600000 };
    long cnt[6] = {0};
    for (uint64_t j = 0; j < DRAWS; j++) {
        uint32_t r = rng_randint(k, j, 6);
        ck_assert_uint_lt(r, 6);
        cnt[r]++;
    }
    double chi = 0;
    for (int i = 0; i < 6; i++) chi += (cnt[i] - DRAWS / 6.0) * (cnt[i] - DRAWS / 6.0) / (DRAWS / 6.0);
    ck_assert_msg(chi < 20.5, "chi-square %g", chi);
    // n = 3 * 2^30: a quarter of the words are rejected; thirds must still be equal
    const uint32_t n = 3u << 30;
    const uint32_t thr = (uint32_t)(-n) % n;
    long third[3] = {0};
    int retried = 0;
    for (uint64_t j = 0; j < 300000; j++) {
        uint32_t r = rng_randint(k, j, n);
        ck_assert_uint_lt(r, n);
        third[r >> 30]++;
        uint64_t m = (uint64_t)rng_uniform_u32(k, j) * n;
        if ((uint32_t)m >= thr) ck_assert_uint_eq(r, (uint32_t)(m >> 32)); // attempt 0 accepted
        else retried++;
    }
    ck_assert_msg(abs(retried - 75000) < 1500, "retries %d", retried);
    for (int i = 0; i < 3; i++) ck_assert_msg(labs(third[i] - 100000) < 1500, "third %d: %ld", i, third[i]);
}
END_TEST

START_TEST(test_shuffle) {
    enum { N = 1000 };
    uint32_t p[N], q[N];
    philox_key k = rng_stream(2, RNG_DATA_ORDER, 0, 0, 0);
    rng_permutation(k, p, N);
    rng_permutation(k, q, N);
    ck_assert(memcmp(p, q, sizeof p) == 0); // deterministic
    char seen[N] = {0};
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_uint_lt(p[i], N);
        ck_assert(!seen[p[i]]);
        seen[p[i]] = 1;
        fixed += p[i] == (uint32_t)i;
    }
    ck_assert_int_lt(fixed, 10); // about 1 expected
    rng_permutation(rng_stream(2, RNG_DATA_ORDER, 1, 0, 0), q, N);
    ck_assert(memcmp(p, q, sizeof p) != 0);
    // rng_shuffle of a non-identity array applies the same permutation
    uint32_t v[N];
    for (int i = 0; i < N; i++) v[i] = 5000 + (uint32_t)i;
    rng_shuffle(k, v, N);
    for (int i = 0; i < N; i++) ck_assert_uint_eq(v[i], 5000 + p[i]);
    // all 6 orders of 3 items equally likely (chi-square, 5 dof, below 20.5)
    long cnt[6] = {0};
    enum { T = 60000 };
    for (uint64_t t = 0; t < T; t++) {
        uint32_t r[3];
        rng_permutation(rng_stream(3, RNG_DATA_ORDER, t, 0, 0), r, 3);
        cnt[r[0] * 2 + (r[1] > r[2])]++;
    }
    double chi = 0;
    for (int i = 0; i < 6; i++) chi += (cnt[i] - T / 6.0) * (cnt[i] - T / 6.0) / (T / 6.0);
    ck_assert_msg(chi < 20.5, "chi-square %g", chi);
    rng_shuffle(k, v, 0); // no-ops
    rng_shuffle(k, v, 1);
}
END_TEST

Suite *suite_rng(void) {
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("rng");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_philox_kat);
    tcase_add_test(tc, test_stream_derivation);
    tcase_add_test(tc, test_streams_independent);
    tcase_add_test(tc, test_normal_moments);
    tcase_add_test(tc, test_chunk_invariance);
    tcase_add_test(tc, test_randint);
    tcase_add_test(tc, test_shuffle);
    suite_add_tcase(s, tc);
    return s;
}
