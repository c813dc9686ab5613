// schedule: linear / quad / cosine beta schedules and their cumulative alpha products
// (schedule.h, METHOD.md section 2).
#include "common/schedule.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/err.h"

static const char *const sched_names[] = {
#define SCHED_KIND_NAME(name, text) text,
    SCHED_KIND_LIST(SCHED_KIND_NAME)
#undef SCHED_KIND_NAME
};
_Static_assert(sizeof sched_names / sizeof sched_names[0] == SCHED_KIND_COUNT, "sched_names");

const char *sched_kind_name(sched_kind k) { return (unsigned)k < SCHED_KIND_COUNT ? sched_names[k] : "?"; }

int sched_kind_from_name(const char *name, sched_kind *out) {
    for (int i = 0; i < SCHED_KIND_COUNT; i++)
        if (name && strcmp(name, sched_names[i]) == 0) {
            *out = (sched_kind)i;
            return 0;
        }
    return err_set(ERR_CONFIG, "unknown beta schedule '%s' (linear, quad, cosine)", name ? name : "");
}

// np.linspace(a, b, n)[i] in float64 (numpy: a + i * step, the last one exactly b).
static double sched_linspace(double a, double b, int n, int i) {
    if (n == 1) return a;
    if (i == n - 1) return b;
    double step = (b - a) / (double)(n - 1);
    return a + (double)i * step;
}

static double sched_cos_abar(double s) {
    double c = cos((s + 0.008) / 1.008 * M_PI / 2.0);
    return c * c;
}

void sched_free(sched *s) {
    if (!s) return;
    free(s->beta);
    free(s->alpha);
    free(s->abar);
    memset(s, 0, sizeof *s);
}

int sched_build(sched *s, sched_kind kind, int T, double beta_start, double beta_end) {
    memset(s, 0, sizeof *s);
    ERR_IF(T < 1, ERR_CONFIG, "diffusion.T must be >= 1, not %d", T);
    ERR_IF((unsigned)kind >= SCHED_KIND_COUNT, ERR_CONFIG, "invalid beta schedule %d", (int)kind);
    if (kind != SCHED_COSINE)
        ERR_IF(!(beta_start > 0 && beta_end < 1 && beta_start <= beta_end), ERR_CONFIG,
               "diffusion.beta_start %g / beta_end %g must satisfy 0 < start <= end < 1", beta_start, beta_end);
    s->kind = kind;
    s->T = T;
    s->beta = malloc(sizeof(float) * (size_t)T);
    s->alpha = malloc(sizeof(float) * (size_t)T);
    s->abar = malloc(sizeof(float) * (size_t)T);
    if (!s->beta || !s->alpha || !s->abar) {
        sched_free(s);
        return err_set(ERR_NOMEM, "out of memory for a schedule of %d steps", T);
    }
    double prod = 1.0;
    for (int i = 0; i < T; i++) {
        double b;
        if (kind == SCHED_LINEAR) {
            b = sched_linspace(beta_start, beta_end, T, i);
        } else if (kind == SCHED_QUAD) {
            b = sched_linspace(sqrt(beta_start), sqrt(beta_end), T, i);
            b = b * b;
        } else {
            b = 1.0 - sched_cos_abar((double)(i + 1) / T) / sched_cos_abar((double)i / T);
            if (b > 0.999) b = 0.999;
        }
        s->beta[i] = (float)b;
        s->alpha[i] = 1.0f - s->beta[i];
        prod *= (double)s->alpha[i];
        s->abar[i] = (float)prod;
    }
    return 0;
}

int sched_from_cfg(sched *s, const cfg *root) {
    int T, kind;
    double b0, b1;
    memset(s, 0, sizeof *s);
    ERR_TRY(cfg_get_int(root, "diffusion.T", &T));
    ERR_TRY(cfg_get_enum(root, "diffusion.beta_schedule", sched_names, SCHED_KIND_COUNT, &kind));
    ERR_TRY(cfg_get_float(root, "diffusion.beta_start", &b0));
    ERR_TRY(cfg_get_float(root, "diffusion.beta_end", &b1));
    return sched_build(s, (sched_kind)kind, T, b0, b1);
}
