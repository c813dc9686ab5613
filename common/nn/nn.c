// nn: the table of named tensors, the arenas and the conv/linear helpers shared by the networks
// (see nn.h). Host code only does bookkeeping; every computation on tensors is an ops_* call.
#include "common/nn/nn.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "kernels/philox.h"

#define NN_ALIGN 16 // floats (64 bytes)

static size_t nn_round(size_t n) { return (n + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN; }

// --- building ---------------------------------------------------------------------------------

void nn_net_init(nn_net *net, ops_ctx *ctx, int max_batch) {
    memset(net, 0, sizeof *net);
    net->ctx = ctx;
    net->max_batch = max_batch;
}

int nn_add(nn_net *net, size_t *off, nn_kind kind, nn_init init, int fan_in, int rank,
           const int *d, const char *fmt, ...) {
    char name[NN_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    ERR_IF(len < 0 || len >= NN_NAME_MAX, ERR_INTERNAL, "tensor name '%s...' too long", name);
    ERR_IF(rank < 0 || rank > NN_MAX_RANK, ERR_INTERNAL, "tensor '%s': rank %d", name, rank);
    ERR_IF(nn_entry_find(net, name), ERR_INTERNAL, "tensor '%s' registered twice", name);
    if (net->n_entries == net->cap_entries) {
        int cap = net->cap_entries ? 2 * net->cap_entries : 64;
        nn_entry *e = realloc(net->entries, (size_t)cap * sizeof *e);
        ERR_IF(!e, ERR_NOMEM, "out of memory registering tensor '%s'", name);
        net->entries = e;
        net->cap_entries = cap;
    }
    nn_entry *e = &net->entries[net->n_entries++];
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, (size_t)len + 1);
    e->rank = rank;
    e->numel = 1;
    for (int i = 0; i < rank; i++) {
        e->shape[i] = d[i];
        e->numel *= (size_t)d[i];
    }
    e->kind = kind;
    e->init = init;
    e->fan_in = fan_in;
    size_t *count = kind == NN_KIND_PARAM ? &net->n_params : &net->n_buffers;
    e->offset = *count;
    *count += e->numel;
    *off = e->offset;
    return 0;
}

size_t nn_act(nn_net *net, size_t per_sample, size_t fixed) {
    size_t off = net->n_acts;
    net->n_acts += nn_round(per_sample * (size_t)net->max_batch + fixed);
    return off;
}

size_t nn_dact(nn_net *net, size_t per_sample) {
    size_t off = nn_act(net, per_sample, 0);
    if (net->n_dacts == net->cap_dacts) {
        int cap = net->cap_dacts ? 2 * net->cap_dacts : 64;
        nn_dact_rec *r = realloc(net->dacts, (size_t)cap * sizeof *r);
        if (!r) {
            net->build_err = 1;
            return off;
        }
        net->dacts = r;
        net->cap_dacts = cap;
    }
    net->dacts[net->n_dacts++] = (nn_dact_rec){off, per_sample};
    return off;
}

void nn_scratch_begin(nn_net *net) { net->scratch_cur = 0; }

size_t nn_scratch(nn_net *net, size_t per_sample) {
    size_t off = net->scratch_cur;
    net->scratch_cur += nn_round(per_sample * (size_t)net->max_batch);
    if (net->scratch_cur > net->scratch_max) net->scratch_max = net->scratch_cur;
    return off;
}

int nn_scratch_zero(nn_net *net, size_t floats) { return ops_fill(net->ctx, nn_sptr(net, 0), 0.0f, floats); }

static int nn_alloc_arena(nn_net *net, float **p, size_t n, const char *what) {
    size_t bytes = (n ? n : 1) * sizeof(float);
    int rc = ops_alloc(net->ctx, (void **)p, bytes);
    if (rc < 0) return err_prefix(rc, "network %s arena (%.1f MiB): ", what, bytes / 1048576.0);
    return 0;
}

int nn_net_alloc(nn_net *net) {
    ERR_IF(net->build_err, ERR_NOMEM, "out of memory building the network's tables");
    net->scratch_at = net->n_acts;
    net->n_acts += net->scratch_max;
    ERR_TRY(nn_alloc_arena(net, &net->params, net->n_params, "parameter"));
    ERR_TRY(nn_alloc_arena(net, &net->grads, net->n_params, "gradient"));
    ERR_TRY(nn_alloc_arena(net, &net->buffers, net->n_buffers, "buffer"));
    ERR_TRY(nn_alloc_arena(net, &net->acts, net->n_acts, "activation"));
    ERR_TRY(ops_fill(net->ctx, net->params, 0.0f, net->n_params));
    ERR_TRY(ops_fill(net->ctx, net->grads, 0.0f, net->n_params));
    ERR_TRY(ops_fill(net->ctx, net->buffers, 0.0f, net->n_buffers));
    return 0;
}

void nn_net_share_params(nn_net *net, const nn_net *owner) {
    if (!net->params_shared) {
        if (net->params) ops_free(net->ctx, net->params);
        if (net->buffers) ops_free(net->ctx, net->buffers);
    }
    net->params = owner->params;
    net->buffers = owner->buffers;
    net->params_shared = 1;
}

void nn_net_free(nn_net *net) {
    if (net->params_shared) net->params = net->buffers = NULL; // the owner's
    net->params_shared = 0;
    float **arenas[] = {&net->params, &net->grads, &net->buffers, &net->acts};
    for (size_t i = 0; i < sizeof arenas / sizeof arenas[0]; i++) {
        if (*arenas[i]) ops_free(net->ctx, *arenas[i]);
        *arenas[i] = NULL;
    }
    free(net->entries);
    free(net->dacts);
    net->entries = NULL;
    net->dacts = NULL;
    net->n_entries = net->cap_entries = net->n_dacts = net->cap_dacts = 0;
}

int nn_zero_dacts(nn_net *net, int n) {
    for (int i = 0; i < net->n_dacts; i++)
        ERR_TRY(ops_fill(net->ctx, nn_ptr(net, net->dacts[i].offset), 0.0f,
                         net->dacts[i].per_sample * (size_t)n));
    return 0;
}

// --- access -------------------------------------------------------------------------------

const nn_entry *nn_entry_find(const nn_net *net, const char *name) {
    for (int i = 0; i < net->n_entries; i++)
        if (!strcmp(net->entries[i].name, name)) return &net->entries[i];
    return NULL;
}

float *nn_entry_data(const nn_net *net, const nn_entry *e) {
    return (e->kind == NN_KIND_PARAM ? net->params : net->buffers) + e->offset;
}

float *nn_param_find(const nn_net *net, const char *name) {
    const nn_entry *e = nn_entry_find(net, name);
    return e ? nn_entry_data(net, e) : NULL;
}

float *nn_grad_find(const nn_net *net, const char *name) {
    const nn_entry *e = nn_entry_find(net, name);
    return e && e->kind == NN_KIND_PARAM ? net->grads + e->offset : NULL;
}

static int nn_entry_check(const nn_net *net, const char *name, size_t numel, const nn_entry **out) {
    const nn_entry *e = nn_entry_find(net, name);
    ERR_IF(!e, ERR_NOTFOUND, "the network has no tensor named '%s'", name);
    char sh[64];
    ERR_IF(e->numel != numel, ERR_INPUT, "tensor '%s' has shape %s (%zu values), given %zu values", name,
           nn_shape_str(e, sh, sizeof sh), e->numel, numel);
    *out = e;
    return 0;
}

int nn_param_set(nn_net *net, const char *name, const float *host, size_t numel) {
    const nn_entry *e = NULL;
    ERR_TRY(nn_entry_check(net, name, numel, &e));
    int rc = ops_upload(net->ctx, nn_entry_data(net, e), host, numel * sizeof(float));
    return rc < 0 ? err_prefix(rc, "setting '%s': ", name) : 0;
}

int nn_param_get(const nn_net *net, const char *name, float *host, size_t numel) {
    const nn_entry *e = NULL;
    ERR_TRY(nn_entry_check(net, name, numel, &e));
    int rc = ops_download(net->ctx, host, nn_entry_data(net, e), numel * sizeof(float));
    return rc < 0 ? err_prefix(rc, "reading '%s': ", name) : 0;
}

const char *nn_shape_str(const nn_entry *e, char *buf, size_t cap) {
    size_t used = 0;
    used += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < e->rank && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%d", i ? ", " : "", e->shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

// --- whole-network operations ------------------------------------------------------------------

int nn_init_default(nn_net *net, uint64_t seed) {
    size_t maxn = 1;
    for (int i = 0; i < net->n_entries; i++)
        if (net->entries[i].numel > maxn) maxn = net->entries[i].numel;
    float *h = malloc(maxn * sizeof *h);
    ERR_IF(!h, ERR_NOMEM, "out of memory initialising the network");
    int rc = 0;
    for (int i = 0; i < net->n_entries; i++) {
        const nn_entry *e = &net->entries[i];
        // one Philox stream per entry: the numbers of an entry do not depend on the others
        philox_key key = {(uint32_t)seed, (uint32_t)(seed >> 32), (uint32_t)i, 0x6e6e696eu};
        double bound = e->fan_in > 0 ? 1.0 / sqrt((double)e->fan_in) : 0.0;
        for (size_t j = 0; j < e->numel; j++) {
            switch (e->init) {
            case NN_INIT_ONE: h[j] = 1.0f; break;
            case NN_INIT_FANIN_UNIFORM:
                h[j] = (float)((2.0 * philox_uniform_at(key, j) - 1.0) * bound);
                break;
            case NN_INIT_NORMAL: h[j] = philox_normal_at(key, j); break;
            default: h[j] = 0.0f; break;
            }
        }
        ERR_GOTO(rc, ops_upload(net->ctx, nn_entry_data(net, e), h, e->numel * sizeof(float)));
    }
fail:
    free(h);
    return rc;
}

int nn_zero_grad(nn_net *net) { return ops_fill(net->ctx, net->grads, 0.0f, net->n_params); }

// --- layer helpers --------------------------------------------------------------------------

static double nn_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Starts a timed call when profiling (returns the start time, or 0).
static double nn_prof_begin(nn_net *net) {
    if (!net->prof || ops_sync(net->ctx) < 0) return 0.0;
    return nn_now();
}

static void nn_prof_end(nn_net *net, double t0, const char *key, double flops) {
    if (!net->prof || t0 == 0.0 || ops_sync(net->ctx) < 0) return;
    double dt = nn_now() - t0;
    nn_prof *p = net->prof;
    int i = 0;
    while (i < p->n && strcmp(p->rows[i].key, key)) i++;
    if (i == p->n) {
        if (p->n == NN_PROF_ROWS) return;
        p->n++;
        memset(&p->rows[i], 0, sizeof p->rows[i]);
        snprintf(p->rows[i].key, sizeof p->rows[i].key, "%s", key);
    }
    p->rows[i].seconds += dt;
    p->rows[i].flops += flops;
    p->rows[i].calls++;
}

static void nn_conv_key(char *buf, size_t cap, const char *op, const ops_conv_shape *s) {
    snprintf(buf, cap, "%s %d->%d k%d s%d %dx%d", op, s->c_in, s->c_out, s->kh, s->stride, s->h, s->w);
}

static double nn_conv_flops(const ops_conv_shape *s) {
    return 2.0 * s->n * s->c_out * ops_conv_out_h(s) * ops_conv_out_w(s) * (double)s->c_in * s->kh * s->kw;
}

int nn_conv_add(nn_net *net, nn_conv *cv, const char *prefix, int c_in, int c_out, int k, int stride,
                int pad_t, int pad_l, int pad_b, int pad_r, int h, int w, int bias) {
    int fan_in = c_in * k * k;
    int dw[4] = {c_out, c_in, k, k};
    ERR_TRY(nn_add(net, &cv->w, NN_KIND_PARAM, NN_INIT_FANIN_UNIFORM, fan_in, 4, dw, "%s.weight", prefix));
    cv->b = SIZE_MAX;
    if (bias) ERR_TRY(nn_add(net, &cv->b, NN_KIND_PARAM, NN_INIT_FANIN_UNIFORM, fan_in, 1, &c_out, "%s.bias", prefix));
    cv->s = (ops_conv_shape){.n = 0, .c_in = c_in, .h = h, .w = w, .c_out = c_out, .kh = k, .kw = k,
                             .stride = stride, .pad_t = pad_t, .pad_l = pad_l, .pad_b = pad_b, .pad_r = pad_r};
    return 0;
}

int nn_conv_fwd(nn_net *net, const nn_conv *cv, int n, float *y, const float *x) {
    ops_conv_shape s = cv->s;
    s.n = n;
    double t0 = nn_prof_begin(net);
    ERR_TRY(ops_conv2d_fwd(net->ctx, &s, y, x, net->params + cv->w, cv->b == SIZE_MAX ? NULL : net->params + cv->b));
    if (net->prof) {
        char key[88];
        nn_conv_key(key, sizeof key, "conv_fwd", &s);
        nn_prof_end(net, t0, key, nn_conv_flops(&s));
    }
    return 0;
}

int nn_conv_bwd(nn_net *net, const nn_conv *cv, int n, float *dx, const float *dy, const float *x) {
    ops_conv_shape s = cv->s;
    s.n = n;
    char key[88];
    double t0 = nn_prof_begin(net);
    if (dx) {
        ERR_TRY(ops_conv2d_bwd_data(net->ctx, &s, dx, dy, net->params + cv->w));
        if (net->prof) {
            nn_conv_key(key, sizeof key, "conv_bwd_data", &s);
            nn_prof_end(net, t0, key, nn_conv_flops(&s));
            t0 = nn_prof_begin(net);
        }
    }
    ERR_TRY(ops_conv2d_bwd_weight(net->ctx, &s, net->grads + cv->w, cv->b == SIZE_MAX ? NULL : net->grads + cv->b, dy,
                                  x));
    if (net->prof) {
        nn_conv_key(key, sizeof key, "conv_bwd_weight", &s);
        nn_prof_end(net, t0, key, nn_conv_flops(&s));
    }
    return 0;
}

int nn_linear_add(nn_net *net, nn_linear *l, const char *prefix, int in, int out) {
    int dw[2] = {out, in};
    ERR_TRY(nn_add(net, &l->w, NN_KIND_PARAM, NN_INIT_FANIN_UNIFORM, in, 2, dw, "%s.weight", prefix));
    ERR_TRY(nn_add(net, &l->b, NN_KIND_PARAM, NN_INIT_FANIN_UNIFORM, in, 1, &out, "%s.bias", prefix));
    l->in = in;
    l->out = out;
    return 0;
}

int nn_linear_fwd(nn_net *net, const nn_linear *l, int n, float *y, const float *x) {
    return ops_linear_fwd(net->ctx, y, x, net->params + l->w, net->params + l->b, n, l->in, l->out);
}

int nn_linear_bwd(nn_net *net, const nn_linear *l, int n, float *dx, const float *dy, const float *x) {
    return ops_linear_bwd(net->ctx, dx, net->grads + l->w, net->grads + l->b, dy, x, net->params + l->w, n,
                          l->in, l->out);
}
