// rng: addressed random streams over Philox4x32-10 (kernels/philox.h).
//
// Every random number in the project is element j of a STREAM named by a tuple
//     (seed, purpose, a, b, c)
// where purpose says what the numbers are for and a, b, c are 64-bit ids chosen by the caller,
// such as (dataset key hash, image index, repeat). A value therefore depends only on its
// address, never on batch size, ordering, thread count or device: repeat 3 of image 17 draws
// the same noise whether 4 or 8 repeats, one or 64 images per batch are asked for.
//
// Key derivation (rng_stream), frozen (changing it changes every sample):
//     h = XXH3_128bits(bytes), bytes = "diffood-rng-v1" (14 bytes, no NUL) followed by
//         seed, purpose id, a, b, c as five 64-bit little-endian words (54 bytes in all);
//     k0 = low32(h.low64), k1 = high32(h.low64), c2 = low32(h.high64), c3 = high32(h.high64).
// Within a stream, element j is lane j % 4 of Philox counter block j / 4 (philox.h), so a CUDA
// kernel given the same philox_key produces the same numbers.
//
// Purpose ids are part of the key: the X-macro below gives each one a FIXED number. Append new
// purposes with new numbers; never renumber.
//
// Use one stream for one kind of draw (uniform words, normals, randint): rng_normal(key, j) and
// rng_uniform(key, j) read the same counter blocks.
// Nothing here allocates or fails.
#ifndef DIFFOOD_RNG_H
#define DIFFOOD_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/philox.h"

// X(name, fixed id, short name)
#define RNG_PURPOSE_LIST(X)                                                        \
    X(RNG_NOISE_SAMPLE, 1, "noise_sample")   /* detection noise n_k: (set key, image, repeat) */ \
    X(RNG_TRAIN_T, 2, "train_t")             /* denoiser timestep draws: (step, 0, 0) */          \
    X(RNG_TRAIN_NOISE, 3, "train_noise")     /* denoiser training noise: (step, 0, 0) */          \
    X(RNG_LABEL_DROP, 4, "label_drop")       /* classifier-free label dropout: (step, 0, 0) */    \
    X(RNG_FLIP, 5, "flip")                   /* horizontal flips: (step or epoch, ...) */         \
    X(RNG_CROP, 6, "crop")                   /* random-crop offsets */                            \
    X(RNG_DROPOUT, 7, "dropout")             /* dropout masks: (step, layer, 0) */                \
    X(RNG_DATA_ORDER, 8, "data_order")       /* epoch shuffles: (epoch, 0, 0) */                  \
    X(RNG_SPLIT, 9, "split")                 /* train/validation split */                         \
    X(RNG_INIT, 10, "init")                  /* weight initialisation: (parameter name hash) */   \
    X(RNG_SUBSET, 11, "subset")              /* choosing a subset of a test set */                \
    X(RNG_TEST, 12, "test")                  /* unit tests and tools */

typedef enum {
#define RNG_PURPOSE_ENUM(name, id, text) name = id,
    RNG_PURPOSE_LIST(RNG_PURPOSE_ENUM)
#undef RNG_PURPOSE_ENUM
    RNG_PURPOSE_COUNT // one past the largest id
} rng_purpose;

// The key of stream (seed, purpose, a, b, c); see the derivation above.
philox_key rng_stream(uint64_t seed, rng_purpose purpose, uint64_t a, uint64_t b, uint64_t c);
// Short name of a purpose ("noise_sample"), or "unknown".
const char *rng_purpose_name(rng_purpose purpose);
// A 64-bit id for a text (a dataset name, a store key, a parameter name): XXH3-64, seed 0.
uint64_t rng_id_str(const char *text);

// Element j as a uniform 32-bit word.
uint32_t rng_uniform_u32(philox_key key, uint64_t j);
// Element j as a uniform double in [0, 1): word * 2^-32.
double rng_uniform(philox_key key, uint64_t j);
// Element j as a standard normal (Box-Muller, philox_normal_at).
float rng_normal(philox_key key, uint64_t j);
// Element j as an integer uniform on [0, n), exactly unbiased (Lemire's multiply-shift with
// rejection). Attempt 0 uses word j of `key`; a rejected attempt r (probability < n / 2^32)
// retries with word j of the stream whose k1 is key.k1 + r * 0x9E3779B9. n == 0 returns 0.
uint32_t rng_randint(philox_key key, uint64_t j, uint32_t n);
// out[i] = rng_normal(key, offset + i) for i < n, a block at a time.
void rng_fill_normal(philox_key key, uint64_t offset, float *out, size_t n);
// out[i] = philox_uniform_at(key, offset + i) for i < n: (word + 0.5) / 2^32 rounded to float, so
// in (0, 1] (words from 2^32 - 128 up round to 1.0f; use rng_uniform where that matters).
void rng_fill_uniform(philox_key key, uint64_t offset, float *out, size_t n);
// Fisher-Yates shuffle of perm[0..n) in place: for i = n-1 down to 1, swap perm[i] with
// perm[rng_randint(key, i, i + 1)] (the counter is the position i).
void rng_shuffle(philox_key key, uint32_t *perm, uint32_t n);
// perm[i] = i, then rng_shuffle: a random permutation of 0..n-1.
void rng_permutation(philox_key key, uint32_t *perm, uint32_t n);

#endif
