// schedule: the diffusion noise schedules of METHOD.md section 2 (linear, quad, cosine).
//
// Betas are computed in float64 and then rounded to float32, as the reference does
// (np.linspace in float64, then torch.from_numpy(betas).float()); alpha_i = 1 - beta_i and
// abar[i] = prod_{j<=i} alpha_j over the float32 alphas, accumulated in float64 and rounded to
// float32 per entry (PyTorch's CPU cumprod of a float32 tensor accumulates in double).
// Indexing is 0-based: abar[0] = 1 - beta_0, abar[T-1] the noisiest level.
#ifndef DIFFOOD_SCHEDULE_H
#define DIFFOOD_SCHEDULE_H

// X(enum name, config name)
#define SCHED_KIND_LIST(X)        \
    X(SCHED_LINEAR, "linear")     \
    X(SCHED_QUAD, "quad")         \
    X(SCHED_COSINE, "cosine")

typedef enum {
#define SCHED_KIND_ENUM(name, text) name,
    SCHED_KIND_LIST(SCHED_KIND_ENUM)
#undef SCHED_KIND_ENUM
    SCHED_KIND_COUNT
} sched_kind;

typedef struct {
    sched_kind kind;
    int T;
    float *beta;  // (T) float32 betas
    float *alpha; // (T) 1 - beta
    float *abar;  // (T) cumulative products
} sched;

// "linear", "quad", "cosine"; "?" when invalid.
const char *sched_kind_name(sched_kind k);
// Parses a schedule name. 0 or ERR_CONFIG listing the choices.
int sched_kind_from_name(const char *name, sched_kind *out);

// Builds the schedule of `kind` with T steps (beta_start, beta_end used by linear and quad) into
// *s; the arrays are malloc'd and owned by *s (sched_free). ERR_CONFIG for T < 1, betas outside
// (0, 1) or beta_start > beta_end; ERR_NOMEM.
int sched_build(sched *s, sched_kind kind, int T, double beta_start, double beta_end);
// Frees the arrays; *s is zeroed (NULL-safe on a zeroed struct).
void sched_free(sched *s);

struct cfg;
// sched_build from the `diffusion` section of a config tree (`node` is the root): keys
// diffusion.T, diffusion.beta_schedule, diffusion.beta_start, diffusion.beta_end. ERR_CONFIG
// naming the key.
int sched_from_cfg(sched *s, const struct cfg *root);

#endif
