// sampler: DDIM / PNDM2 / PNDM4 denoising of METHOD.md section 6, over a callback that returns
// the (guided) noise prediction, kept apart from the network (STYLE.md 9).
//
// A sampler is created once for at most max_n images of `per` floats each on an ops context,
// with every buffer it needs (PNDM history, RK intermediates) allocated then: sampler_run
// allocates nothing. All image buffers are device memory of the context; every update is an
// op of kernels/ops.h, so the same code runs on the CPU and CUDA backends.
//
// Steps: skip = T / sample_step; seq = t_start, t_start - skip, ... while > t_end;
// seq_next = seq[1:] + [t_end]. With index_quirk (the reference, default) the update reads
// a_t = abar[t + 1] and a_n = abar[t_next + 1] (abar of index T read as abar[T - 1]... never
// happens for t_start <= T - 2) while the network gets the time value t; without it a_t =
// abar[t], a_n = abar[t_next] (abar[-1] = 1). The DDIM transfer, PNDM2 and PNDM4 (RK4 warm-up
// for the first three steps, t_mid = (t + t_next) / 2 truncated) are exactly METHOD.md 6.
// The network also gets the truncated t_mid (the reference passes the float (t + t_next) / 2,
// which differs only when t - t_next is odd: never for levels that are multiples of the skip).
// The transfer's coefficients are computed in double from the float32 abar and applied with
// ops_axpby as floats.
#ifndef DIFFOOD_SAMPLER_H
#define DIFFOOD_SAMPLER_H

#include "common/schedule.h"
#include "kernels/ops.h"

// X(enum name, config name)
#define SAMPLER_METHOD_LIST(X)      \
    X(SAMPLER_DDIM, "ddim")         \
    X(SAMPLER_PNDM2, "pndm2")       \
    X(SAMPLER_PNDM4, "pndm4")

typedef enum {
#define SAMPLER_METHOD_ENUM(name, text) name,
    SAMPLER_METHOD_LIST(SAMPLER_METHOD_ENUM)
#undef SAMPLER_METHOD_ENUM
    SAMPLER_METHOD_COUNT
} sampler_method;

// "ddim", "pndm2", "pndm4"; "?" when invalid.
const char *sampler_method_name(sampler_method m);
// Parses a method name: 0 or ERR_CONFIG listing the choices.
int sampler_method_from_name(const char *name, sampler_method *out);

// The noise prediction for n images x (n, per) (device) at time value t (the same for every image
// of the call): an integer step, or PNDM4's midpoint (t + t_next) / 2, which may be a half (the
// reference gives the network the float and truncates it only as an index): writes eps (n, per) (device). Returns 0 or a negative err.h code,
// which sampler_run returns unchanged.
typedef int (*sampler_eps_fn)(void *user, float *eps, const float *x, float t, int n);

typedef struct sampler sampler;

// Creates a sampler; `sch` is borrowed (must outlive the sampler). ERR_CONFIG for sample_step
// outside 1..T (T / sample_step is an integer division, as the reference; it need not divide T),
// ERR_USAGE for max_n < 1, per < 1 or a bad method, ERR_NOMEM / device errors. *out is owned by
// the caller (sampler_destroy; NULL-safe).
int sampler_create(sampler **out, ops_ctx *ctx, const sched *sch, sampler_method method, int sample_step,
                   int index_quirk, int max_n, size_t per);
void sampler_destroy(sampler *s);

// Denoises x (n, per) in place from t_start down to t_end (METHOD.md 6: an image noised to
// integer step t uses t_start = t - 1, t_end = -1). t_start <= t_end does nothing. Calls eps_fn
// once per network evaluation. ERR_USAGE for n outside 1..max_n, t_end < -1, t_start > T - 2
// with the quirk (abar[t_start + 1] would be out of range) or > T - 1 without it; errors of
// eps_fn and ops pass through (x is then partly updated).
int sampler_run(sampler *s, float *x, int n, int t_start, int t_end, sampler_eps_fn eps_fn, void *user);

// Number of network evaluations sampler_run makes for (t_start, t_end) (for progress and
// benchmarks): DDIM one per step, PNDM2 two on the first step then one, PNDM4 four on each of
// the first three steps then one.
int sampler_evals(const sampler *s, int t_start, int t_end);

// x_t = sqrt(abar[t]) x0 + sqrt(1 - abar[t]) noise for n floats (device; x may alias x0).
// ERR_USAGE for t outside 0..T-1.
int sampler_noise_to(ops_ctx *ctx, const sched *sch, float *x, const float *x0, const float *noise, size_t n,
                     int t);

// Classifier-free guidance: e = (1 + w) e_cond - w e_null for n floats (e may alias e_cond).
int sampler_guide(ops_ctx *ctx, float *e, const float *e_cond, const float *e_null, size_t n, float w);

#endif
