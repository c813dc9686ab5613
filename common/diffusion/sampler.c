// sampler: DDIM / PNDM2 / PNDM4 denoising of METHOD.md section 6 (sampler.h), on ops of
// kernels/ops.h only. The coefficients of the DDIM transfer are computed on the host in double
// from the float32 abar of the schedule and passed to ops_axpby as floats; every image buffer
// is allocated by sampler_create.
#include "common/diffusion/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

// --- names -----------------------------------------------------------------------------------

static const char *const method_names[] = {
#define SAMPLER_METHOD_NAME(name, text) text,
    SAMPLER_METHOD_LIST(SAMPLER_METHOD_NAME)
#undef SAMPLER_METHOD_NAME
};
_Static_assert(sizeof method_names / sizeof method_names[0] == SAMPLER_METHOD_COUNT, "method name table");

const char *sampler_method_name(sampler_method m) {
    return (unsigned)m < SAMPLER_METHOD_COUNT ? method_names[m] : "?";
}

int sampler_method_from_name(const char *name, sampler_method *out) {
    for (int i = 0; i < SAMPLER_METHOD_COUNT; i++)
        if (name && !strcmp(name, method_names[i])) {
            *out = (sampler_method)i;
            return 0;
        }
    return err_set(ERR_CONFIG, "sample.method: '%s' is not one of ddim, pndm2, pndm4", name ? name : "(null)");
}

// --- the sampler -----------------------------------------------------------------------------

#define SAMPLER_HIST 3 // PNDM4 keeps the first evaluations of the last three steps

struct sampler {
    ops_ctx *ctx;
    const sched *sch;
    sampler_method method;
    int skip, quirk, max_n;
    size_t per;
    float *e1;                 // (max_n, per) the first evaluation of the current step
    float *hist[SAMPLER_HIST]; // (max_n, per) PNDM4 history ring (PNDM2 uses hist[0])
    float *e;                  // (max_n, per) further evaluations
    float *acc;                // (max_n, per) the combined noise prediction of a step
    float *xt;                 // (max_n, per) RK / improved-Euler intermediate image
};

int sampler_create(sampler **out, ops_ctx *ctx, const sched *sch, sampler_method method, int sample_step,
                   int index_quirk, int max_n, size_t per) {
    *out = NULL;
    ERR_IF(!ctx || !sch || !sch->abar || sch->T < 1, ERR_USAGE, "sampler: no context or schedule");
    ERR_IF((unsigned)method >= SAMPLER_METHOD_COUNT, ERR_USAGE, "sampler: bad method %d", (int)method);
    ERR_IF(sample_step < 1 || sample_step > sch->T, ERR_CONFIG,
           "sample.sample_step: %d is outside 1..%d (diffusion.T)", sample_step, sch->T);
    ERR_IF(max_n < 1 || per < 1, ERR_USAGE, "sampler: max_n %d and per %zu must be >= 1", max_n, per);
    sampler *s = calloc(1, sizeof *s);
    ERR_IF(!s, ERR_NOMEM, "sampler: out of memory");
    s->ctx = ctx;
    s->sch = sch;
    s->method = method;
    s->skip = sch->T / sample_step;
    s->quirk = index_quirk != 0;
    s->max_n = max_n;
    s->per = per;
    size_t bytes = (size_t)max_n * per * sizeof(float);
    int rc = 0;
    int nh = method == SAMPLER_PNDM4 ? SAMPLER_HIST : method == SAMPLER_PNDM2 ? 1 : 0;
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&s->e1, bytes));
    for (int i = 0; i < nh; i++) ERR_GOTO(rc, ops_alloc(ctx, (void **)&s->hist[i], bytes));
    if (method != SAMPLER_DDIM) {
        ERR_GOTO(rc, ops_alloc(ctx, (void **)&s->e, bytes));
        ERR_GOTO(rc, ops_alloc(ctx, (void **)&s->acc, bytes));
        ERR_GOTO(rc, ops_alloc(ctx, (void **)&s->xt, bytes));
    }
    *out = s;
    return 0;
fail:
    sampler_destroy(s);
    return rc;
}

void sampler_destroy(sampler *s) {
    if (!s) return;
    float *bufs[] = {s->e1, s->hist[0], s->hist[1], s->hist[2], s->e, s->acc, s->xt};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) ops_free(s->ctx, bufs[i]);
    free(s);
}

// --- steps -----------------------------------------------------------------------------------

// Number of steps from t_start down to t_end (the length of seq).
static int n_steps(const sampler *s, int t_start, int t_end) {
    if (t_start <= t_end) return 0;
    return (t_start - t_end + s->skip - 1) / s->skip;
}

int sampler_evals(const sampler *s, int t_start, int t_end) {
    int k = n_steps(s, t_start, t_end);
    if (k == 0) return 0;
    switch (s->method) {
    case SAMPLER_DDIM: return k;
    case SAMPLER_PNDM2: return k + 1;
    case SAMPLER_PNDM4: return k <= 3 ? 4 * k : 12 + (k - 3);
    default: return 0;
    }
}

// abar of the transfer at time value t (METHOD.md 6): abar[t + 1] with the quirk, else abar[t]
// with abar[-1] = 1.
static double abar_at(const sampler *s, int t) {
    int i = s->quirk ? t + 1 : t;
    return i < 0 ? 1.0 : (double)s->sch->abar[i];
}

// y = transfer(x, e, t -> t_next) in the reference's algebraic form:
// y = cx x + ce e, cx = 1 + (a_n - a_t) / (sqrt(a_t) (sqrt(a_t) + sqrt(a_n))),
// ce = -(a_n - a_t) / (sqrt(a_t) (sqrt((1 - a_n) a_t) + sqrt((1 - a_t) a_n))). y may alias x.
static int transfer(const sampler *s, float *y, const float *x, const float *e, int t, int t_next, size_t cnt) {
    double at = abar_at(s, t), an = abar_at(s, t_next);
    double st = sqrt(at), sn = sqrt(an);
    double d = an - at;
    double cx = 1.0 + d / (st * (st + sn));
    double ce = -d / (st * (sqrt((1.0 - an) * at) + sqrt((1.0 - at) * an)));
    return ops_axpby(s->ctx, y, (float)cx, x, (float)ce, e, cnt);
}

int sampler_run(sampler *s, float *x, int n, int t_start, int t_end, sampler_eps_fn eps_fn, void *user) {
    ERR_IF(!s || !x || !eps_fn, ERR_USAGE, "sampler_run: NULL argument");
    ERR_IF(n < 1 || n > s->max_n, ERR_USAGE, "sampler_run: %d images outside 1..%d", n, s->max_n);
    if (t_start <= t_end) return 0;
    int top = s->quirk ? s->sch->T - 2 : s->sch->T - 1;
    ERR_IF(t_start > top || t_end < -1, ERR_USAGE,
           "sampler_run: steps %d -> %d outside -1..%d (T = %d%s)", t_start, t_end, top, s->sch->T,
           s->quirk ? ", index quirk" : "");
    ops_ctx *ctx = s->ctx;
    size_t cnt = (size_t)n * s->per;
    int nh = 0;     // history entries filled (PNDM)
    int head = 0;   // ring slot of the newest history entry
    for (int t = t_start; t > t_end; t -= s->skip) {
        int tn = t - s->skip > t_end ? t - s->skip : t_end;
        ERR_TRY(eps_fn(user, s->e1, x, t, n));
        if (s->method == SAMPLER_DDIM) {
            ERR_TRY(transfer(s, x, x, s->e1, t, tn, cnt));
            continue;
        }
        if (s->method == SAMPLER_PNDM2) {
            if (nh == 0) { // improved Euler: e = (e1 + eps(transfer(x, e1), t_next)) / 2
                ERR_TRY(transfer(s, s->xt, x, s->e1, t, tn, cnt));
                ERR_TRY(eps_fn(user, s->e, s->xt, tn, n));
                ERR_TRY(ops_axpby(ctx, s->acc, 0.5f, s->e1, 0.5f, s->e, cnt));
            } else { // e = (3 e1 - e_{-1}) / 2
                ERR_TRY(ops_axpby(ctx, s->acc, 1.5f, s->e1, -0.5f, s->hist[0], cnt));
            }
            ERR_TRY(transfer(s, x, x, s->acc, t, tn, cnt));
            ERR_TRY(ops_copy(ctx, s->hist[0], s->e1, cnt * sizeof(float)));
            nh = 1;
            continue;
        }
        // PNDM4
        if (nh < SAMPLER_HIST) { // RK4 at t_mid = (t + t_next) / 2: the network gets it as is,
            int tm = (t + tn) / 2;  // the schedule index truncated (C division truncates toward 0)
            float tmv = 0.5f * (float)(t + tn);
            ERR_TRY(transfer(s, s->xt, x, s->e1, t, tm, cnt));
            ERR_TRY(eps_fn(user, s->e, s->xt, tmv, n));
            ERR_TRY(ops_axpby(ctx, s->acc, 1.0f / 6.0f, s->e1, 2.0f / 6.0f, s->e, cnt));
            ERR_TRY(transfer(s, s->xt, x, s->e, t, tm, cnt));
            ERR_TRY(eps_fn(user, s->e, s->xt, tmv, n));
            ERR_TRY(ops_axpy(ctx, s->acc, 2.0f / 6.0f, s->e, cnt));
            ERR_TRY(transfer(s, s->xt, x, s->e, t, tn, cnt));
            ERR_TRY(eps_fn(user, s->e, s->xt, tn, n));
            ERR_TRY(ops_axpy(ctx, s->acc, 1.0f / 6.0f, s->e, cnt));
        } else { // e = (55 e1 - 59 e_{-1} + 37 e_{-2} - 9 e_{-3}) / 24
            const float *h1 = s->hist[head], *h2 = s->hist[(head + 2) % 3], *h3 = s->hist[(head + 1) % 3];
            ERR_TRY(ops_axpby(ctx, s->acc, (float)(55.0 / 24.0), s->e1, (float)(-59.0 / 24.0), h1, cnt));
            ERR_TRY(ops_axpy(ctx, s->acc, (float)(37.0 / 24.0), h2, cnt));
            ERR_TRY(ops_axpy(ctx, s->acc, (float)(-9.0 / 24.0), h3, cnt));
        }
        ERR_TRY(transfer(s, x, x, s->acc, t, tn, cnt));
        head = nh == 0 ? 0 : (head + 1) % SAMPLER_HIST;
        ERR_TRY(ops_copy(ctx, s->hist[head], s->e1, cnt * sizeof(float)));
        if (nh < SAMPLER_HIST) nh++;
    }
    return 0;
}

// --- noising and guidance --------------------------------------------------------------------

int sampler_noise_to(ops_ctx *ctx, const sched *sch, float *x, const float *x0, const float *noise, size_t n,
                     int t) {
    ERR_IF(!sch || t < 0 || t >= sch->T, ERR_USAGE, "sampler_noise_to: step %d outside 0..%d", t,
           sch ? sch->T - 1 : -1);
    double a = (double)sch->abar[t];
    return ops_axpby(ctx, x, (float)sqrt(a), x0, (float)sqrt(1.0 - a), noise, n);
}

int sampler_guide(ops_ctx *ctx, float *e, const float *e_cond, const float *e_null, size_t n, float w) {
    return ops_axpby(ctx, e, 1.0f + w, e_cond, -w, e_null, n);
}
