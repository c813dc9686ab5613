// optim: AdamW / SGD steps, schedules, gradient clipping and EMA over flat arenas (optim.h).
#include "common/nn/optim.h"

#include <math.h>
#include <stdlib.h>

#include "common/err.h"

struct optim {
    ops_ctx *ctx;
    optim_kind kind;
    optim_adamw_config adamw;
    optim_sgd_config sgd;
    size_t n;
    float *state; // AdamW: m (n) then v (n); SGD: momentum buffer (n)
    float *tmp;   // one float: the squared gradient norm
    long steps;
};

struct optim_ema {
    ops_ctx *ctx;
    size_t n;
    float decay;
    float *shadow;
};

optim_adamw_config optim_adamw_default(void) {
    optim_adamw_config c = {.lr = 2e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f,
                            .warmup = 5000, .decay_every = 0, .decay_factor = 1.0f, .clip_norm = 1.0f};
    return c;
}

optim_sgd_config optim_sgd_default(void) {
    optim_sgd_config c = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1, .total_steps = 0,
                          .lr_floor = 1e-6f, .clip_norm = 0.0f};
    return c;
}

static int optim_new(optim **out, ops_ctx *ctx, size_t n, size_t state_floats, optim_kind kind) {
    *out = NULL;
    optim *o = calloc(1, sizeof *o);
    ERR_IF(!o, ERR_NOMEM, "out of memory creating an optimiser");
    o->ctx = ctx;
    o->kind = kind;
    o->n = n;
    int rc = 0;
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&o->state, (state_floats ? state_floats : 1) * sizeof(float)));
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&o->tmp, sizeof(float)));
    ERR_GOTO(rc, ops_fill(ctx, o->state, 0.0f, state_floats));
    *out = o;
    return 0;
fail:
    optim_destroy(o);
    return err_prefix(rc, "optimiser state (%zu floats): ", state_floats);
}

int optim_adamw_create(optim **out, ops_ctx *ctx, size_t n, const optim_adamw_config *cfg) {
    ERR_IF(!(cfg->lr >= 0.0f) || !(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f) || !(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f)
               || !(cfg->eps > 0.0f) || !(cfg->weight_decay >= 0.0f) || cfg->warmup < 0 || cfg->decay_every < 0
               || !(cfg->clip_norm >= 0.0f),
           ERR_CONFIG, "AdamW: bad hyper-parameters (lr %g, betas %g %g, eps %g, wd %g, warmup %ld, clip %g)",
           (double)cfg->lr, (double)cfg->beta1, (double)cfg->beta2, (double)cfg->eps, (double)cfg->weight_decay,
           cfg->warmup, (double)cfg->clip_norm);
    ERR_TRY(optim_new(out, ctx, n, 2 * n, OPTIM_ADAMW));
    (*out)->adamw = *cfg;
    return 0;
}

int optim_sgd_create(optim **out, ops_ctx *ctx, size_t n, const optim_sgd_config *cfg) {
    ERR_IF(!(cfg->lr >= 0.0f) || !(cfg->momentum >= 0.0f) || !(cfg->weight_decay >= 0.0f) || cfg->total_steps < 0
               || !(cfg->lr_floor >= 0.0f) || !(cfg->clip_norm >= 0.0f) || (cfg->nesterov && cfg->momentum <= 0.0f),
           ERR_CONFIG, "SGD: bad hyper-parameters (lr %g, momentum %g, wd %g, total steps %ld, floor %g)",
           (double)cfg->lr, (double)cfg->momentum, (double)cfg->weight_decay, cfg->total_steps, (double)cfg->lr_floor);
    ERR_TRY(optim_new(out, ctx, n, n, OPTIM_SGD));
    (*out)->sgd = *cfg;
    return 0;
}

void optim_destroy(optim *o) {
    if (!o) return;
    if (o->state) ops_free(o->ctx, o->state);
    if (o->tmp) ops_free(o->ctx, o->tmp);
    free(o);
}

double optim_lr(const optim *o, long step) {
    if (o->kind == OPTIM_ADAMW) {
        const optim_adamw_config *c = &o->adamw;
        // the reference's LambdaLR factor (runner.py get_optim), stepped after each optimiser step
        if (step < c->warmup) return c->lr * ((double)step / (double)c->warmup);
        if (c->decay_every > 0) return c->lr * pow(c->decay_factor, (double)((step - c->warmup) / c->decay_every));
        return c->lr;
    }
    const optim_sgd_config *c = &o->sgd;
    if (c->total_steps <= 0) return c->lr;
    double s = step < c->total_steps ? (double)step : (double)c->total_steps;
    return c->lr_floor + (c->lr - c->lr_floor) * 0.5 * (1.0 + cos(M_PI * s / (double)c->total_steps));
}

long optim_steps(const optim *o) { return o->steps; }
void optim_set_steps(optim *o, long steps) { o->steps = steps; }

float *optim_state(optim *o, size_t *n) {
    *n = o->kind == OPTIM_ADAMW ? 2 * o->n : o->n;
    return o->state;
}

int optim_clip_grad_norm(ops_ctx *ctx, float *grads, size_t n, float max_norm, float *tmp, float *norm) {
    float ss = 0.0f;
    ERR_TRY(ops_sumsq(ctx, tmp, grads, n));
    ERR_TRY(ops_download(ctx, &ss, tmp, sizeof ss));
    float total = sqrtf(ss);
    if (norm) *norm = total;
    if (max_norm > 0.0f) {
        float coef = max_norm / (total + 1e-6f);
        if (coef < 1.0f) ERR_TRY(ops_scale(ctx, grads, coef, n));
    }
    return 0;
}

int optim_step(optim *o, float *params, float *grads, float *grad_norm) {
    float clip = o->kind == OPTIM_ADAMW ? o->adamw.clip_norm : o->sgd.clip_norm;
    if (clip > 0.0f || grad_norm) ERR_TRY(optim_clip_grad_norm(o->ctx, grads, o->n, clip, o->tmp, grad_norm));
    float lr = (float)optim_lr(o, o->steps);
    if (o->kind == OPTIM_ADAMW) {
        const optim_adamw_config *c = &o->adamw;
        ERR_TRY(ops_adamw(o->ctx, params, grads, o->state, o->state + o->n, o->n, lr, c->beta1, c->beta2, c->eps,
                          c->weight_decay, (int)(o->steps + 1)));
    } else {
        const optim_sgd_config *c = &o->sgd;
        ERR_TRY(ops_sgd(o->ctx, params, grads, o->state, o->n, lr, c->momentum, c->weight_decay, c->nesterov));
    }
    o->steps++;
    return 0;
}

// --- EMA -----------------------------------------------------------------------------------------

int optim_ema_create(optim_ema **out, ops_ctx *ctx, const float *params, size_t n, float decay) {
    *out = NULL;
    ERR_IF(!(decay >= 0.0f && decay <= 1.0f), ERR_CONFIG, "EMA rate %g outside [0, 1]", (double)decay);
    optim_ema *e = calloc(1, sizeof *e);
    ERR_IF(!e, ERR_NOMEM, "out of memory creating the EMA");
    e->ctx = ctx;
    e->n = n;
    e->decay = decay;
    int rc = 0;
    ERR_GOTO(rc, ops_alloc(ctx, (void **)&e->shadow, (n ? n : 1) * sizeof(float)));
    ERR_GOTO(rc, ops_copy(ctx, e->shadow, params, n * sizeof(float)));
    *out = e;
    return 0;
fail:
    optim_ema_destroy(e);
    return err_prefix(rc, "EMA weights (%zu floats): ", n);
}

void optim_ema_destroy(optim_ema *e) {
    if (!e) return;
    if (e->shadow) ops_free(e->ctx, e->shadow);
    free(e);
}

int optim_ema_update(optim_ema *e, const float *params) { return ops_ema(e->ctx, e->shadow, params, e->n, e->decay); }

float *optim_ema_params(optim_ema *e) { return e->shadow; }
